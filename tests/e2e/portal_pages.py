"""Every portal page, as data: who opens it and where. tests/e2e/test_mobile_and_a11y.py opens each
at 1280 and 390 px and audits it (width, primary actions, axe-core). Add a page here when you add
one to the portal.

``path`` may name the demo's objects in braces; ``portal_ids()`` (below) says what they are:
``{retry_production}`` is the production change "Retry card authorisation on timeout", and so on.
``persona`` is a demo username, or None for a page one sees logged out."""
from dataclasses import dataclass


@dataclass(frozen=True)
class PortalPage:
    name: str
    persona: str | None
    path: str


PAGES = [
    PortalPage("login", None, "/accounts/login/"),
    PortalPage("dashboard (developer)", "dev", "/"),
    PortalPage("dashboard (reviewer)", "rev", "/"),
    PortalPage("dashboard (operations)", "ops", "/"),
    PortalPage("dashboard (security)", "sec", "/"),
    PortalPage("dashboard (manager)", "mgr", "/"),
    PortalPage("dashboard (auditor)", "auditor", "/"),
    PortalPage("change awaiting sign-off (reviewer)", "rev", "/changes/{retry_production}/"),
    PortalPage("sign-off form (reviewer)", "rev", "/changes/{retry_production}/signoff/"),
    PortalPage("change ready to deploy (operations)", "ops", "/changes/{rotate_production}/"),
    PortalPage("own draft (developer)", "dev", "/changes/{draft}/"),
    PortalPage("deployed change (auditor)", "auditor", "/changes/{retry_staging}/"),
    PortalPage("rejected change (developer)", "dev", "/changes/{rejected}/"),
    PortalPage("post-implementation review (second reviewer)", "rev2", "/changes/{emergency}/review/"),
    PortalPage("emergency change after deployment (second reviewer)", "rev2", "/changes/{emergency}/"),
    PortalPage("all changes (developer)", "dev", "/changes/"),
    PortalPage("all changes, filtered (auditor)", "auditor", "/changes/?state=deployed&q=card"),
    PortalPage("new change form (developer)", "dev", "/changes/new/"),
    PortalPage("edit own draft (its author)", "dev2", "/changes/{draft}/edit/"),
    PortalPage("inbox (reviewer)", "rev", "/inbox/"),
    PortalPage("inbox (operations)", "ops", "/inbox/"),
    PortalPage("inbox (security)", "sec", "/inbox/"),
    PortalPage("inbox (manager)", "mgr", "/inbox/"),
    PortalPage("inbox (auditor)", "auditor", "/inbox/"),
    PortalPage("access reviews (manager)", "mgr", "/access-reviews/"),
    PortalPage("access reviews (security)", "sec", "/access-reviews/"),
    PortalPage("access reviews, no campaign of theirs (developer)", "dev", "/access-reviews/"),
    PortalPage("evidence exports (auditor)", "auditor", "/evidence/"),
    PortalPage("not found (developer)", "dev", "/changes/999999/"),
    PortalPage("not found (logged out)", None, "/no/such/page/"),
]


def portal_ids() -> dict:
    """The demo's objects that PAGES' paths name, by the names they use."""
    from releases import demo
    from releases.models import ChangeRequest

    def pk(**filters):
        return ChangeRequest.objects.filter(team__slug="payments", **filters).values_list("pk", flat=True).get()

    return {
        "retry_production": pk(title=demo.MARKER, environment__slug="production"),
        "retry_staging": pk(title=demo.MARKER, environment__slug="staging"),
        "rotate_production": pk(title="Rotate webhook signing secret", environment__slug="production"),
        "draft": pk(title="Upgrade TLS library"),
        "rejected": pk(title="Experimental fraud rule"),
        "emergency": pk(change_type="emergency", state="deployed"),
    }
