"""Every portal page (tests/e2e/portal_pages.py), as the persona who opens it, at 1280 and 390 px:

* at 390 px the document is no wider than the viewport (no sideways page scroll);
* at both widths every visible button (``button``, ``.button``, submit inputs) lies inside the viewport;
* axe-core (npm, pinned in package.json; ``make fixtures`` installs it) finds no serious or critical
  violation of the WCAG 2.0/2.1 A and AA rules nor of its best practices (``AXE_TAGS``).

The admin's change lists fit 1280 px without a sideways scroll of their own.

One browser for the module, one context per persona and width (logged in once per persona), and
every page checked before one assertion lists every problem found. ``make screenshots`` also saves
the phone-sized screenshots of the README from here."""
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, screenshot
from tests.e2e.portal_pages import PAGES, portal_ids

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
BLOCKING = {"serious", "critical"}
# Among the rules AXE_TAGS select (docs/portal.md lists them all): these must be in the set run.
CORE_RULES = {"color-contrast", "label", "button-name", "link-name", "document-title", "html-has-lang",
              "landmark-one-main", "page-has-heading-one", "meta-viewport", "scrollable-region-focusable",
              "aria-valid-attr-value", "duplicate-id-aria", "heading-order", "region", "td-has-header"}
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
PASSWORD = "countersign-demo"
# README screenshots this module takes when asked (make screenshots): page name -> file.
PHONE_SCREENSHOTS = {"dashboard (operations)": "mobile-dashboard", "change awaiting sign-off (reviewer)": "mobile-change"}

BUTTONS_OUTSIDE = """([width]) => [...document.querySelectorAll('button, .button, input[type=submit]')]
  .filter(el => el.checkVisibility({visibilityProperty: true}))
  .map(el => [el.innerText.trim() || el.value || el.outerHTML.slice(0, 60), el.getBoundingClientRect()])
  .filter(([, box]) => box.left < -0.5 || box.right > width + 0.5)
  .map(([label, box]) => `${label} (${Math.round(box.left)}..${Math.round(box.right)} px)`)"""
AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""


@pytest.fixture(scope="module")
def audit_browser():
    """One headless Chromium for the module (the live server and ORM calls share the thread's loop,
    hence DJANGO_ALLOW_ASYNC_UNSAFE for the module's duration)."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run `make fixtures` (npm ci)")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _the_demo_with_work_in_every_page(demo):
    """The demo, plus what its pages need to have something in them: an emergency change deployed and
    waiting for its post-implementation review, an open access-review campaign of payments, and for
    the inbox's decisions a pending privileged grant and an open alert."""
    from datetime import timedelta

    from audit.alerts import raise_alert
    from governance import services as governance
    from governance.access_reviews.services import access_review_start
    from releases import services
    from releases.models import Deployment

    cr = services.change_request_create(
        actor=demo.dev, team=demo.payments, environment=demo.staging, title="Hotfix: disable broken 3DS challenge",
        artifact="registry.example.com/payments-api:2.15.1", change_type="emergency", risk="high",
        emergency_reason="3DS challenges fail for every card.")
    cr = services.change_request_submit(actor=demo.dev, change_request=cr)
    services.change_request_approve(actor=demo.rev, change_request=cr, comment="Incident INC-42.")
    deployment = services.deployment_start(actor=demo.ops, change_request=cr)
    services.deployment_finish(actor=demo.ops, deployment=Deployment.objects.get(pk=deployment.pk), outcome="succeeded")
    access_review_start(actor=demo.admin, period=f"{timezone.now():%Y}-Q-audit", team=demo.payments)
    governance.role_grant(actor=demo.mgr, user=demo.dev2, role=demo.roles["reviewer"], team=demo.payments,
                          environment=demo.production, justification="Cover rev in production.",
                          expires_at=timezone.now() + timedelta(days=30))
    raise_alert("page_audit", subject="Rubber-stamp approvals in payments", team="payments")


def _log_in(browser, base_url, username):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector(".topbar .who")
    state = context.storage_state()
    context.close()
    return state


def _audit(page, width, size) -> list[str]:
    problems = []
    if size == "phone":
        wide = page.evaluate("() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
        if wide > width:
            problems.append(f"the document is {wide} px wide in a {width} px viewport")
    problems += [f"button outside the viewport: {b}" for b in page.evaluate(BUTTONS_OUTSIDE, [width])]
    page.add_script_tag(path=str(AXE))
    checked = set(page.evaluate("(tags) => axe.getRules(tags).map(rule => rule.ruleId)", AXE_TAGS))
    problems += [f"axe did not run {rule}" for rule in sorted(CORE_RULES - checked)]
    for violation in page.evaluate(AXE_RUN, AXE_TAGS):
        if violation["impact"] in BLOCKING:
            problems.append(f"axe {violation['impact']} {violation['id']}: {violation['help']} at {violation['nodes']}")
    return problems


@pytest.mark.django_db(transaction=True)
def test_every_portal_page_fits_a_phone_keeps_its_buttons_in_view_and_passes_axe(live_server, audit_browser, demo):
    _the_demo_with_work_in_every_page(demo)
    ids = portal_ids()
    states = {persona: _log_in(audit_browser, live_server.url, persona) for persona in {p.persona for p in PAGES} if persona}
    problems, audited = [], []
    for size, (width, height) in WIDTHS.items():
        for persona in sorted({p.persona or "" for p in PAGES}):
            context = audit_browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True,
                                          storage_state=states.get(persona))
            page = context.new_page()
            for portal_page in (p for p in PAGES if (p.persona or "") == persona):
                response = page.goto(live_server.url + portal_page.path.format(**ids))
                assert response is not None
                found = _audit(page, width, size)
                problems += [f"{portal_page.name} at {width} px ({response.status}): {p}" for p in found]
                audited.append((portal_page.name, width, response.status))
                if size == "phone" and portal_page.name in PHONE_SCREENSHOTS:
                    screenshot(page, PHONE_SCREENSHOTS[portal_page.name])
            context.close()

    assert len(audited) == 2 * len(PAGES)
    assert not [a for a in audited if a[2] >= 500], audited
    assert not problems, "\n".join(problems)


@pytest.mark.django_db(transaction=True)
def test_the_admin_change_lists_fit_1280_px(live_server, audit_browser, demo):
    call_command("sync_schedules", stdout=open(os.devnull, "w"))
    context = audit_browser.new_context(viewport={"width": 1280, "height": 900},
                                        storage_state=_log_in(audit_browser, live_server.url, "admin"))
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/")
    lists = sorted({a.get_attribute("href") for a in page.locator("#content-main a[href$='/']").all()
                    if a.get_attribute("href").count("/") == 4})
    assert len(lists) > 15, lists
    too_wide = []
    for path in lists:
        page.goto(live_server.url + path)
        sizes = page.evaluate("""() => { const t = document.querySelector('#result_list');
            return [document.documentElement.scrollWidth, t ? t.scrollWidth : 0, t ? t.parentElement.clientWidth : 0] }""")
        if sizes[0] > 1280 or sizes[1] > sizes[2] + 1:
            too_wide.append(f"{path}: document {sizes[0]} px, list {sizes[1]} px in {sizes[2]} px")
    context.close()
    assert not too_wide, "\n".join(too_wide)
