"""Security's and a manager's journeys in a real browser (issue 18), each at 1280 and at 390 px, with
the portal's pages only (no API call) and the outcome asserted in the database:

* sec finds two pending privileged grants and an alert in the inbox, is refused approving the one a
  conflict rule added since forbids (the refusal at the top, focused), approves the other and
  resolves the alert;
* mgr goes from the inbox to the access-review page, keeps two grants with one comment, is told a
  revoke needs a comment, revokes two after the confirmation page, and sees that a batch holding an
  item decided meanwhile (in another tab) changes nothing and names that item.

The pages a journey reaches that the page audit cannot open by URL (the inbox and the access-review
page with a refusal, the revoke confirmation) get the same checks as every portal page there:
no sideways scroll at 390 px, every button inside the viewport, axe-core with no serious or
critical violation (tests/e2e/test_mobile_and_a11y.py)."""
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from audit.alerts import raise_alert
from audit.models import Alert
from governance import duties
from governance import services as governance
from governance.models import AccessReviewItem, RoleAssignment
from tests.e2e.test_mobile_and_a11y import AXE, WIDTHS, _audit
from tests.e2e.test_signoff_and_deploy import Portal
from tests.factories import set_control

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=sorted(WIDTHS), ids=lambda size: f"{WIDTHS[size][0]}px")
def sized(request, chromium, live_server):
    """A page of ``chromium`` at one of the audit's widths, driven as ``Portal``; ``size`` says which."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run `make fixtures` (npm ci)")
    width, height = WIDTHS[request.param]
    context = chromium.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    yield Portal(page, live_server.url), request.param
    context.close()


def _audited(portal, size, what):
    problems = _audit(portal.page, WIDTHS[size][0], size)
    assert not problems, f"{what}:\n" + "\n".join(problems)


def _go_to_inbox(portal):
    portal.page.locator(".topbar").get_by_role("link", name=re.compile(r"^Inbox")).click()
    expect(portal.page.get_by_role("heading", level=1)).to_have_text("Waiting on you")


def test_sec_approves_a_pending_grant_and_triages_an_alert_from_the_inbox(demo, sized):
    portal, size = sized
    page = portal.page

    def requested(user):
        return governance.role_grant(actor=demo.mgr, user=user, role=demo.roles["reviewer"], team=demo.payments,
                                     environment=demo.production, justification="Cover rev in production.",
                                     expires_at=timezone.now() + timedelta(days=30))

    grant, conflicting = requested(demo.auditor), requested(demo.dev2)
    # A rule added after dev2's request: approving it now would let dev2 review their own kind of change.
    set_control(by=demo.sec, control="governance.conflictrule", duty_a=duties.SUBMIT, duty_b=duties.APPROVE,
                tier="production", description="Authors do not review production changes.")
    alert, _ = raise_alert("journey", subject="Rubber-stamp approvals in payments", team="payments")

    portal.log_in("sec")
    _go_to_inbox(portal)
    row = page.locator(f"#grant-{grant.pk}")
    expect(row).to_contain_text("auditor: Reviewer in Payments (Production)")
    expect(row).to_contain_text("asked by mgr")
    _audited(portal, size, "the inbox with grants and an alert")

    # dev2's grant: refused (G3 checked again), the reason at the top and the focus on it.
    page.locator(f"#grant-{conflicting.pk}").get_by_role("button", name="Approve").click()
    refusal = page.locator("#refusal")
    expect(refusal).to_be_focused()
    expect(refusal).to_contain_text("Not decided: dev2's Reviewer grant in Payments (Production)")
    expect(refusal).to_contain_text("sod_conflict")
    _audited(portal, size, "the inbox with a refusal")

    page.locator(f"#grant-{grant.pk}").get_by_role("button", name="Approve").click()
    expect(page.locator(".messages")).to_contain_text("You approved auditor's Reviewer grant in Payments (Production)")
    expect(page.locator(f"#grant-{grant.pk}")).to_have_count(0)

    triage = page.locator(f"#alert-{alert.pk}")
    triage.get_by_label("What was found and done").fill("Both reviewers read the diff; approvals were fine.")
    triage.get_by_role("button", name="Resolve").click()
    expect(page.locator(".messages")).to_contain_text("You resolved the alert")
    expect(page.locator(f"#alert-{alert.pk}")).to_have_count(0)

    grant.refresh_from_db()
    assert (grant.status, grant.approved_by) == (RoleAssignment.Status.ACTIVE, demo.sec)
    conflicting.refresh_from_db()
    assert (conflicting.status, conflicting.approved_by) == (RoleAssignment.Status.PENDING, None)
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by, alert.resolution) == (
        Alert.Status.RESOLVED, demo.sec, "Both reviewers read the diff; approvals were fine.")


def test_mgr_decides_review_items_in_bulk(demo, sized):
    portal, size = sized
    page = portal.page
    campaign = governance.access_review_start(actor=demo.admin, period="journey", team=demo.payments)

    def item(user, role, environment=None):
        return AccessReviewItem.objects.select_related("assignment").get(
            review=campaign, assignment__user=user, assignment__role__slug=role, assignment__environment=environment)

    def choose(*items):
        for one in items:
            grant = one.assignment
            page.get_by_label(f"Choose {grant.user.username}'s {grant.role.name} grant in Payments "
                              f"({grant.environment.name})").check()

    kept = [item(demo.dev, "developer", demo.staging), item(demo.dev2, "developer", demo.staging)]
    revoked = [item(demo.dev, "developer", demo.development), item(demo.dev2, "developer", demo.development)]
    stale, fresh = item(demo.rev, "reviewer", demo.staging), item(demo.rev2, "reviewer", demo.staging)

    portal.log_in("mgr")
    _go_to_inbox(portal)
    portal.section("Access-review items due").get_by_role("link", name="Decide them").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Access reviews")
    expect(portal.section("Campaigns")).to_contain_text(campaign.name)

    choose(*kept)
    page.get_by_label("Comment for the chosen grants").fill("Both still ship payments.")
    page.get_by_role("button", name="Keep chosen").click()
    expect(page.locator(".messages")).to_contain_text("You kept 2 grants.")

    # A revoke without a comment: nothing is decided, the reason is at the top and has the focus.
    choose(*revoked)
    page.get_by_role("button", name="Revoke chosen…").click()
    expect(page.locator("#refusal")).to_be_focused()
    expect(page.locator("#refusal")).to_contain_text("Say why the grants are revoked.")
    _audited(portal, size, "the access-review page with a refusal")
    page.get_by_label("Comment for the chosen grants").fill("Nobody deploys to development by hand any more.")
    page.get_by_role("button", name="Revoke chosen…").click()  # the choice was kept
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke 2 grants?")
    _audited(portal, size, "the revoke confirmation")
    page.get_by_role("button", name="Revoke 2 grants").click()
    expect(page.locator(".messages")).to_contain_text("You revoked 2 grants; they ended at once.")

    # An item decided in another tab while this page is open: the batch holding it changes nothing.
    choose(stale, fresh)
    governance.access_review_item_decide(actor=demo.mgr, item=stale, decision="keep", comment="Meanwhile.")
    page.get_by_label("Comment for the chosen grants").fill("Still reviewing.")
    page.get_by_role("button", name="Keep chosen").click()
    refusal = page.locator("#refusal")
    expect(refusal).to_be_focused()
    expect(refusal).to_contain_text("Nothing was decided")
    expect(refusal).to_contain_text("rev's Reviewer grant in Payments (Staging): This item is already decided")

    def decided(one):
        one.refresh_from_db()
        one.assignment.refresh_from_db()
        return one.decision, one.decided_by, one.comment, one.assignment.status

    active, ended = RoleAssignment.Status.ACTIVE, RoleAssignment.Status.REVOKED
    assert [decided(one) for one in kept] == [("keep", demo.mgr, "Both still ship payments.", active)] * 2
    assert [decided(one) for one in revoked] == [
        ("revoke", demo.mgr, "Nobody deploys to development by hand any more.", ended)] * 2
    assert decided(stale) == ("keep", demo.mgr, "Meanwhile.", active)
    assert decided(fresh) == ("", None, "", active)
