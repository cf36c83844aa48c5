"""The whole path in a real browser: two reviewers sign off a production change with their
passwords, then an operator deploys it and reports the outcome. ``make screenshots`` saves the
README's screenshots in docs/img/ from it."""
import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from audit.models import AuditEvent
from releases.demo import MARKER
from releases.models import Approval, ChangeRequest, Deployment
from tests.e2e.conftest import screenshot

PASSWORD = "countersign-demo"


class Portal:
    """The portal as one person at a time sees it through the browser."""

    def __init__(self, page, base_url):
        self.page, self.base_url = page, base_url

    def log_in(self, username, password=PASSWORD):
        self.page.goto(f"{self.base_url}/accounts/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.locator(".topbar .who")).to_have_text(username)

    def log_out(self):
        self.page.get_by_role("button", name="Log out").click()
        expect(self.page.get_by_role("heading", name="Log in to Countersign")).to_be_visible()

    def sign(self, comment, password=PASSWORD):
        self.page.get_by_label("Approve this revision").check()
        self.page.get_by_label("Comment").fill(comment)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign", exact=True).click()

    def section(self, title):
        return self.page.locator("section.card", has=self.page.get_by_role("heading", name=title, exact=True))

    def state(self):
        return self.page.locator(".page-head .badge")


@pytest.mark.browser
def test_reviewers_sign_off_in_the_portal_then_ops_deploys(live_server, chromium):
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    cr = ChangeRequest.objects.get(title=MARKER, environment__slug="production")
    page = chromium.new_page(viewport={"width": 1320, "height": 900})
    portal = Portal(page, live_server.url)

    # rev finds the change waiting on the dashboard; a mistyped password signs nothing.
    portal.log_in("rev")
    awaiting = portal.section("Awaiting my review")
    expect(awaiting).to_contain_text(f"CR-{cr.pk}")
    awaiting.get_by_role("link", name="Review & sign off").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Sign off CR-{cr.pk}")
    portal.sign("Retry is idempotent; staging run was clean.", password="not-my-password")
    expect(page.locator(".field-errors")).to_contain_text("That is not your password")
    assert not Approval.objects.filter(change_request=cr, reviewer__username="rev").exists()
    portal.sign("Retry is idempotent; staging run was clean.")
    expect(page.locator(".messages")).to_contain_text("still needs further approvals")
    expect(portal.state()).to_have_text("Pending")
    portal.log_out()

    # rev2's sign-off meets the production policy.
    portal.log_in("rev2")
    page.goto(f"{live_server.url}/changes/{cr.pk}/signoff/")
    portal.sign("Second pair of eyes: fine.")
    expect(page.locator(".messages")).to_contain_text("approved")
    expect(portal.state()).to_have_text("Approved")
    portal.log_out()

    # ops sees it ready, starts the deployment and reports success.
    portal.log_in("ops")
    ready = portal.section("Ready for me to deploy")
    expect(ready).to_contain_text(f"CR-{cr.pk}")
    screenshot(page, "dashboard")
    ready.get_by_role("row", name=f"CR-{cr.pk}").get_by_role("link", name="Deploy…").click()
    page.get_by_label("Pipeline run").fill("https://ci.example.com/run/4711")
    page.get_by_role("button", name="Start deployment").click()
    expect(portal.state()).to_have_text("Deploying")
    page.get_by_label("Succeeded").check()
    page.get_by_label("Notes").fill("Rolled out to all regions; error rate unchanged.")
    page.get_by_role("button", name="Record outcome").click()
    expect(page.locator(".messages")).to_contain_text("recorded as succeeded")
    expect(portal.state()).to_have_text("Deployed")
    expect(portal.section("History")).to_contain_text("Deployment succeeded")
    screenshot(page, "change-request")

    cr.refresh_from_db()
    assert cr.state == ChangeRequest.State.DEPLOYED
    signed = cr.approvals.filter(revision=cr.revision).order_by("created_at")
    assert [(a.reviewer.username, a.via) for a in signed] == [("rev", "portal"), ("rev2", "portal")]
    deployment = Deployment.objects.get(change_request=cr)
    assert (deployment.deployer.username, deployment.state) == ("ops", Deployment.State.SUCCEEDED)
    assert deployment.pipeline_url == "https://ci.example.com/run/4711"
    assert AuditEvent.objects.filter(action="change_request.signoff_failed", actor_username="rev",
                                     target_id=str(cr.pk)).count() == 1
