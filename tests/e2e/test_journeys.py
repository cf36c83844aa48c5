"""Issue 18's persona journeys in a real browser, each at 1280 px and at 390 px, through the portal's
pages and forms only (no API call):

* the developer creates a change, submits it, is asked for changes, revises and resubmits;
* the reviewer asks for changes, then signs off the revision that answers them;
* the operator deploys, sees the deployment fail and retries it as a new attempt;
* the auditor requests an evidence export on the portal's evidence page and downloads it.

What another persona does in between (a reviewer's request for changes in the developer's journey,
the author's revision in the reviewer's) is done through the same services the portal calls, so
that each test walks one person's pages. Each journey ends by asserting the outcome in the
database. At 390 px every page the journey reaches is no wider than the viewport and keeps every
visible button inside it, and each primary action is inside the viewport when it is pressed."""
import hashlib
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from audit.models import AuditEvent, EvidenceExport
from releases import services
from releases.models import Approval, ChangeRequest, Deployment
from tests.e2e.test_mobile_and_a11y import BUTTONS_OUTSIDE, PASSWORD, WIDTHS

pytestmark = pytest.mark.browser

S = ChangeRequest.State
BUILD_TIMEOUT_MS = 60_000
DOCUMENT_WIDTH = "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"


class Journey:
    """One persona in one browser context at one width. ``press`` is how a journey clicks a
    primary action: the button is asserted inside the viewport first. ``arrive`` is called on
    every page the journey reaches: at 390 px the page must not scroll sideways and no visible
    button may lie outside the viewport."""

    def __init__(self, browser, base_url, size, **options):
        self.width, height = WIDTHS[size]
        self.phone = size == "phone"
        self.context = browser.new_context(viewport={"width": self.width, "height": height}, **options)
        self.page = self.context.new_page()
        self.base_url = base_url
        self.visited: list[str] = []

    def close(self):
        self.context.close()

    def log_in(self, username):
        self.page.goto(f"{self.base_url}/accounts/login/")
        self.arrive()
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.press(self.page.get_by_role("button", name="Log in"))
        expect(self.page.locator(".topbar .who")).to_have_text(username)
        self.arrive()

    def arrive(self):
        self.page.wait_for_load_state()
        self.visited.append(self.page.url)
        if not self.phone:
            return
        wide = self.page.evaluate(DOCUMENT_WIDTH)
        assert wide <= self.width, f"{self.page.url}: the document is {wide} px wide in {self.width} px"
        outside = self.page.evaluate(BUTTONS_OUTSIDE, [self.width])
        assert not outside, f"{self.page.url}: buttons outside the viewport: {outside}"

    def in_view(self, locator):
        """The action is visible and, once scrolled to, wholly inside the viewport."""
        expect(locator).to_be_visible()
        locator.scroll_into_view_if_needed()
        box = locator.bounding_box()
        viewport = self.page.viewport_size
        assert box is not None
        assert box["x"] >= -0.5 and box["x"] + box["width"] <= viewport["width"] + 0.5, (
            f"{locator} spans {box['x']:.0f}..{box['x'] + box['width']:.0f} px of {viewport['width']}")
        assert box["y"] >= -0.5 and box["y"] + box["height"] <= viewport["height"] + 0.5, (
            f"{locator} is not within the viewport's height once scrolled to: {box}")

    def press(self, locator):
        self.in_view(locator)
        locator.click()

    def nav(self, name):
        """A link of the top bar, by the start of its name (the inbox's carries its count)."""
        self.press(self.page.locator(".topbar nav").get_by_role("link", name=re.compile(rf"^{re.escape(name)}\b")))
        self.arrive()

    def section(self, title):
        return self.page.locator("section.card", has=self.page.get_by_role("heading", name=title, exact=True))

    def state(self):
        return self.page.locator(".page-head .badge").first

    def message(self):
        return self.page.locator(".messages")

    def sign(self, decision, comment):
        self.page.get_by_label(decision).check()
        self.page.get_by_label("Comment").fill(comment)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.press(self.page.get_by_role("button", name="Sign", exact=True))
        self.arrive()


def _people():
    from django.contrib.auth import get_user_model

    return {u.username: u for u in get_user_model().objects.all()}


@pytest.fixture
def journey(live_server, chromium):
    """``journey(size, **context options)``: a new persona's browser at that width."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    opened = []

    def open_one(size, **options):
        opened.append(Journey(chromium, live_server.url, size, **options))
        return opened[-1]

    yield open_one
    for one in opened:
        one.close()


SIZES = pytest.mark.parametrize("size", list(WIDTHS))


@SIZES
def test_the_developer_creates_submits_is_asked_for_changes_revises_and_resubmits(journey, size):
    from governance.models import Environment

    people, staging = _people(), Environment.objects.get(slug="staging")
    dev = journey(size)
    page = dev.page
    dev.log_in("dev")

    # A new change from the navigation: the change form, saved as a draft.
    dev.nav("New change")
    expect(page.get_by_role("heading", level=1)).to_have_text("New change request")
    page.get_by_label("Title").fill("Raise the card gateway timeout")
    page.get_by_label("Environment").select_option(str(staging.pk))
    page.get_by_label("Risk", exact=True).select_option("low")
    page.get_by_label("Artifact").fill("registry.example.com/payments-api@sha256:" + "5e7a" * 16)
    page.get_by_label("Description").fill("From 3 s to 5 s: the gateway's p99 is 3.4 s.")
    page.get_by_label("Ticket").fill("https://tickets.example.com/PAY-130")
    page.get_by_label("Implementation plan").fill("Deploy; watch the timeout rate for an hour.")
    page.get_by_label("Affected service").fill("payments-api")
    dev.press(page.get_by_role("button", name="Save draft"))
    dev.arrive()
    expect(dev.message()).to_contain_text("saved")
    expect(dev.state()).to_have_text("Draft")
    cr = ChangeRequest.objects.get(title="Raise the card gateway timeout")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"CR-{cr.pk}")
    expect(dev.section("Policy checklist")).to_contain_text("Approvals of revision 1")

    # Submitted for review from the draft's page.
    dev.press(page.get_by_role("button", name="Submit for review"))
    dev.arrive()
    expect(dev.message()).to_contain_text("submitted for review (revision 1)")
    expect(dev.state()).to_have_text("Pending")

    # rev asks for changes (rev's own journey is the next test; here through the service the portal calls).
    services.change_request_request_changes(actor=people["rev"], change_request=cr, via=Approval.Via.PORTAL,
                                            comment="Add a back-out plan, please.", revision=1)

    # dev finds it in the inbox, reads what to change, edits it (revision 2) and resubmits.
    dev.nav("Inbox")
    mine = dev.section("Your changes to act on")
    expect(mine).to_contain_text(f"CR-{cr.pk}")
    dev.press(mine.get_by_role("link", name=f"CR-{cr.pk}"))
    dev.arrive()
    expect(dev.state()).to_have_text("Changes Requested")
    expect(dev.section("Approvals")).to_contain_text("Add a back-out plan, please.")
    expect(page.locator("#author")).to_contain_text("A reviewer asked for changes")
    dev.press(page.locator("#author").get_by_role("link", name="Edit"))
    dev.arrive()
    page.get_by_label("Back-out plan").fill("Redeploy the previous digest; the timeout is read at start.")
    dev.press(page.get_by_role("button", name="Save", exact=True))
    dev.arrive()
    expect(dev.message()).to_contain_text("now at revision 2")
    expect(dev.state()).to_have_text("Changes Requested")
    dev.press(page.get_by_role("button", name="Resubmit for review"))
    dev.arrive()
    expect(dev.message()).to_contain_text("submitted for review (revision 2)")
    expect(dev.state()).to_have_text("Pending")

    cr.refresh_from_db()
    assert (cr.state, cr.revision, cr.author.username) == (S.PENDING, 2, "dev")
    assert (cr.environment, cr.risk, cr.affected_service, cr.ticket_url) == (
        staging, "low", "payments-api", "https://tickets.example.com/PAY-130")
    assert cr.backout_plan == "Redeploy the previous digest; the timeout is read at start."
    [asked] = cr.approvals.all()
    assert (asked.reviewer.username, asked.decision, asked.revision, asked.stale) == (
        "rev", Approval.Decision.CHANGES_REQUESTED, 1, True)
    moves = [(e.action, e.actor_username, e.data.get("to_state"), e.data.get("resubmitted"))
             for e in AuditEvent.objects.filter(target_type="releases.changerequest", target_id=str(cr.pk))
             .order_by("sequence")]
    assert moves == [
        ("change_request.created", "dev", "draft", None),
        ("change_request.submitted", "dev", "pending", None),
        ("change_request.changes_requested", "rev", "changes_requested", None),
        ("change_request.revised", "dev", "changes_requested", None),
        ("change_request.submitted", "dev", "pending", True),
    ], moves


@SIZES
def test_the_reviewer_asks_for_changes_then_signs_off_the_revision(journey, size):
    from governance.models import Environment, Team

    people = _people()
    cr = services.change_request_create(
        actor=people["dev"], team=Team.objects.get(slug="payments"), environment=Environment.objects.get(slug="staging"),
        title="Cache card BIN lookups", artifact="registry.example.com/payments-api@sha256:" + "b1a5" * 16,
        description="An hour's cache of BIN ranges.")
    cr = services.change_request_submit(actor=people["dev"], change_request=cr)
    rev = journey(size)
    page = rev.page
    rev.log_in("rev")

    # rev opens the change from the inbox and asks for changes (signed with the password, like a decision).
    rev.nav("Inbox")
    reviews = rev.section("Reviews to do")
    expect(reviews).to_contain_text(f"CR-{cr.pk}")
    rev.press(reviews.get_by_role("link", name=f"CR-{cr.pk}"))
    rev.arrive()
    expect(rev.state()).to_have_text("Pending")
    rev.press(page.locator(".layout-side").get_by_role("link", name="Request changes"))
    rev.arrive()
    expect(page.get_by_label("Request changes: back to the author, who revises and resubmits")).to_be_checked()
    rev.sign("Request changes: back to the author, who revises and resubmits", "How is the cache invalidated?")
    expect(rev.message()).to_contain_text("You asked for changes")
    expect(rev.state()).to_have_text("Changes Requested")

    # dev answers in a new revision and resubmits (dev's own journey is the test above).
    cr = services.change_request_update(actor=people["dev"], change_request=cr,
                                        changes={"description": "An hour's cache of BIN ranges, flushed on "
                                                                "every BIN table import."})
    cr = services.change_request_submit(actor=people["dev"], change_request=cr)

    # rev sees it waiting again and signs off revision 2.
    rev.nav("Inbox")
    reviews = rev.section("Reviews to do")
    expect(reviews).to_contain_text(f"CR-{cr.pk}")
    rev.press(reviews.locator("li", has_text=f"CR-{cr.pk}").get_by_role("link", name="Review & sign off"))
    rev.arrive()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Sign off CR-{cr.pk}")
    expect(rev.section("You are deciding")).to_contain_text("flushed on every BIN table import")
    rev.sign("Approve this revision", "Invalidation answered; fine.")
    expect(rev.message()).to_contain_text("its policy is met and it is approved")
    expect(rev.state()).to_have_text("Approved")

    cr.refresh_from_db()
    assert (cr.state, cr.revision) == (S.APPROVED, 2)
    decisions = [(a.reviewer.username, a.decision, a.revision, a.via, a.stale, a.comment)
                 for a in cr.approvals.order_by("created_at", "pk")]
    assert decisions == [
        ("rev", Approval.Decision.CHANGES_REQUESTED, 1, Approval.Via.PORTAL, True, "How is the cache invalidated?"),
        ("rev", Approval.Decision.APPROVED, 2, Approval.Via.PORTAL, False, "Invalidation answered; fine."),
    ]


@SIZES
def test_the_operator_deploys_sees_it_fail_and_retries_as_a_new_attempt(journey, size):
    cr = ChangeRequest.objects.get(title="Rotate webhook signing secret", environment__slug="production")
    assert cr.state == S.APPROVED
    ops = journey(size)
    page = ops.page
    ops.log_in("ops")

    # ops finds the deployment waiting in the inbox and starts it.
    ops.nav("Inbox")
    waiting = ops.section("Deployments to run")
    ops.press(waiting.locator("li", has_text=f"CR-{cr.pk}").get_by_role("link", name="Deploy…"))
    ops.arrive()
    page.get_by_label("Pipeline run").fill("https://ci.example.com/run/5001")
    ops.press(page.get_by_role("button", name="Start deployment"))
    ops.arrive()
    expect(ops.state()).to_have_text("Deploying")

    # It fails.
    page.get_by_label("Failed").check()
    page.get_by_label("Notes").fill("Webhook receivers rejected the new signature.")
    ops.press(page.get_by_role("button", name="Record outcome"))
    ops.arrive()
    expect(ops.message()).to_contain_text("recorded as failed")
    expect(ops.state()).to_have_text("Failed")

    # Not a dead end: the inbox offers the retry, the change page runs it as a new attempt.
    ops.nav("Inbox")
    ops.press(ops.section("Deployments to run").locator("li", has_text=f"CR-{cr.pk}").get_by_role("link",
                                                                                                  name="Retry…"))
    ops.arrive()
    retry = page.locator("#retry")
    expect(retry).to_contain_text("as a new attempt")
    retry.get_by_label("Pipeline run").fill("https://ci.example.com/run/5002")
    ops.press(retry.get_by_role("button", name="Retry deployment"))
    ops.arrive()
    expect(ops.message()).to_contain_text("a new attempt")
    expect(ops.state()).to_have_text("Deploying")
    page.get_by_label("Succeeded").check()
    page.get_by_label("Notes").fill("Receivers updated first; the new signature is accepted.")
    ops.press(page.get_by_role("button", name="Record outcome"))
    ops.arrive()
    expect(ops.message()).to_contain_text("recorded as succeeded")
    expect(ops.state()).to_have_text("Deployed")

    cr.refresh_from_db()
    assert cr.state == S.DEPLOYED
    attempts = [(d.deployer.username, d.state, d.pipeline_url) for d in cr.deployments.order_by("pk")]
    assert attempts == [("ops", Deployment.State.FAILED, "https://ci.example.com/run/5001"),
                        ("ops", Deployment.State.SUCCEEDED, "https://ci.example.com/run/5002")]
    first, second = cr.deployments.order_by("pk")
    started = [e.data for e in AuditEvent.objects.filter(action="deployment.started", target_id=str(cr.pk))
               .order_by("sequence")]
    assert [(d.get("retry_of"), d.get("attempt")) for d in started] == [(None, None), (first.pk, 2)]
    assert second.revision == first.revision == cr.revision


@SIZES
def test_the_auditor_exports_evidence_from_the_portal_and_downloads_it(journey, size, settings, tmp_path):
    settings.EVIDENCE_ROOT = tmp_path / "evidence"
    auditor = journey(size, accept_downloads=True)
    page = auditor.page
    auditor.log_in("auditor")

    auditor.nav("Evidence")
    expect(page.get_by_role("heading", level=1)).to_have_text("Evidence exports")
    page.get_by_label("Framework", exact=True).select_option("sox")
    auditor.press(page.get_by_role("button", name="Request export"))
    auditor.arrive()
    expect(auditor.message()).to_contain_text("is requested")
    export = EvidenceExport.objects.get()
    row = page.locator(f"#export-{export.pk}")
    expect(row.locator(".badge")).to_have_text("Done", timeout=BUILD_TIMEOUT_MS)
    auditor.arrive()
    download_link = row.get_by_role("link", name=f"Download #{export.pk}")
    auditor.in_view(download_link)
    with page.expect_download() as downloading:
        download_link.click()
    bundle = Path(tmp_path / "downloaded" / downloading.value.suggested_filename)
    downloading.value.save_as(bundle)

    export.refresh_from_db()
    assert (export.framework, export.status, export.requested_by.username) == (
        "sox", EvidenceExport.Status.DONE, "auditor")
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == export.sha256
    for action in ("evidence.export_requested", "evidence.downloaded"):
        assert AuditEvent.objects.filter(action=action, actor_username="auditor",
                                         target_id=str(export.pk)).count() == 1, action

