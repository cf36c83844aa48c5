"""C2 and C4: who may approve, how often, and when approvals add up to an approved change."""
import pytest
from django.core.exceptions import ValidationError

from core.errors import Denied, InvalidState
from releases import services
from releases.models import Approval, ChangeRequest
from tests.factories import UserFactory, bootstrap_grant
from tests.releases.stories import draft, events_for, pending, pending_in_production, reload

S = ChangeRequest.State


def approve(actor, cr, at, via="api", **kwargs):
    return services.change_request_approve(actor=actor, change_request=cr, via=via, at=at, **kwargs)


# --- allowed -----------------------------------------------------------------------------------


def test_one_reviewer_approves_a_staging_change(demo, now):
    cr = pending(demo, now, environment=demo.staging)

    cr = approve(demo.rev, cr, now, comment="Retry is idempotent.")

    assert cr.state == S.APPROVED
    assert cr.approved_at == now
    [approval] = cr.approvals.all()
    assert (approval.reviewer, approval.decision, approval.revision, approval.artifact) == (
        demo.rev, Approval.Decision.APPROVED, 1, cr.artifact
    )
    assert (approval.via, approval.is_security, approval.is_team_member, approval.stale) == ("api", False, True, False)
    assert events_for(cr)[-1].action == "change_request.approved"


def test_production_waits_for_its_second_approval(demo, now):
    cr = pending_in_production(demo, now)

    cr = approve(demo.rev, cr, now, via="portal")
    assert cr.state == S.PENDING
    assert events_for(cr)[-1].action == "change_request.approval_recorded"

    cr = approve(demo.rev2, cr, now, via="portal")
    assert cr.state == S.APPROVED
    assert events_for(cr)[-1].action == "change_request.approved"


def test_security_may_approve_with_its_security_duty(demo, now):
    cr = pending(demo, now, environment=demo.staging)

    cr = approve(demo.sec, cr, now)

    assert cr.state == S.APPROVED
    assert cr.approvals.get().is_security


# --- C2: who may not ---------------------------------------------------------------------------


def test_the_author_may_not_approve_their_own_change(demo, now, nothing_written):
    """dev is given a reviewer grant in staging: the duty is there, the author rule still holds."""
    dev3 = UserFactory(username="dev3")
    bootstrap_grant(dev3, "developer", demo.payments, demo.staging)
    bootstrap_grant(dev3, "reviewer", demo.payments, demo.staging)
    cr = pending(demo, now, author=dev3)

    with nothing_written(), pytest.raises(Denied) as refused:
        approve(dev3, cr, now)

    assert refused.value.codes == ["author_cannot_approve"]


def test_an_author_without_approve_hears_both_reasons(demo, now, nothing_written):
    cr = pending(demo, now, author=demo.dev)

    with nothing_written(), pytest.raises(Denied) as refused:
        approve(demo.dev, cr, now)

    assert refused.value.codes == ["missing_duty", "author_cannot_approve"]


def test_a_contributor_may_not_approve(demo, now, nothing_written):
    """rev wrote one of the commits: listed by CI as a contributor, rev may not approve."""
    cr = pending(demo, now, author=demo.dev, contributors=["rev"])

    with nothing_written(), pytest.raises(Denied) as refused:
        approve(demo.rev, cr, now)

    assert refused.value.codes == ["contributor_cannot_approve"]


def test_one_person_counts_once_per_revision(demo, now, nothing_written):
    cr = pending_in_production(demo, now)
    approve(demo.rev, cr, now, via="portal")

    with nothing_written(), pytest.raises(Denied) as refused:
        approve(demo.rev, cr, now, via="portal")

    assert refused.value.codes == ["already_approved"]
    assert reload(cr).state == S.PENDING


def test_an_operator_without_approve_may_not_approve(demo, now, nothing_written):
    cr = pending(demo, now, environment=demo.staging)

    with nothing_written(), pytest.raises(Denied) as refused:
        approve(demo.ops, cr, now)

    assert refused.value.codes == ["missing_duty"]


def test_a_reviewer_for_staging_may_not_approve_for_production(demo, now, nothing_written):
    rev3 = UserFactory(username="rev3")
    bootstrap_grant(rev3, "reviewer", demo.payments, demo.staging)
    cr = pending_in_production(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        approve(rev3, cr, now, via="portal")

    assert refused.value.codes == ["missing_duty"]


@pytest.mark.parametrize("state", ["draft", "approved", "rejected", "cancelled"])
def test_only_pending_changes_can_be_decided(demo, now, nothing_written, state):
    cr = draft(demo, now, environment=demo.staging)
    if state != "draft":
        cr = services.change_request_submit(actor=demo.dev, change_request=cr, at=now)
    if state == "approved":
        cr = approve(demo.rev, cr, now)
    if state == "rejected":
        cr = services.change_request_reject(actor=demo.rev, change_request=cr, comment="No rollback plan", at=now)
    if state == "cancelled":
        cr = services.change_request_cancel(actor=demo.dev, change_request=cr, reason="Superseded", at=now)
    assert cr.state == state

    for decide in (services.change_request_approve, services.change_request_reject):
        with nothing_written(), pytest.raises(InvalidState) as refused:
            decide(actor=demo.rev2, change_request=cr, at=now)
        assert refused.value.codes == ["invalid_state"]
        assert refused.value.status_code == 409


def test_an_unknown_channel_is_refused(demo, now, nothing_written):
    """Only the system records automatic approvals (C9); a person's approval comes from the portal
    or the API."""
    cr = pending(demo, now, environment=demo.staging)

    for via in ("auto", "email"):
        with nothing_written(), pytest.raises(ValidationError) as refused:
            approve(demo.rev, cr, now, via=via)
        assert "via" in refused.value.message_dict


# --- C4: when approvals suffice ------------------------------------------------------------------


def test_a_high_risk_production_change_needs_a_security_approval(demo, now):
    cr = pending_in_production(demo, now, risk="high")

    cr = approve(demo.rev, cr, now, via="portal")
    cr = approve(demo.rev2, cr, now, via="portal")
    assert cr.state == S.PENDING, "two reviewers are enough approvals, but none of them is security"

    cr = approve(demo.sec, cr, now, via="portal")
    assert cr.state == S.APPROVED
    assert [a.is_security for a in cr.approvals.all()] == [False, False, True]


def test_a_security_approval_counts_towards_the_minimum_too(demo, now):
    cr = pending_in_production(demo, now, risk="high")

    cr = approve(demo.sec, cr, now, via="portal")
    assert cr.state == S.PENDING
    cr = approve(demo.rev, cr, now, via="portal")
    assert cr.state == S.APPROVED


def test_production_needs_a_reviewer_from_the_changes_team(demo, now):
    """Two reviewers of team identity approve a payments change: enough approvals, no team reviewer."""
    outsiders = [UserFactory(username=name) for name in ("irev", "irev2")]
    for outsider in outsiders:
        bootstrap_grant(outsider, "reviewer", demo.identity, demo.production)
    cr = pending_in_production(demo, now)

    for outsider in outsiders:
        cr = approve(outsider, cr, now, via="portal")
    assert cr.state == S.PENDING
    assert [a.is_team_member for a in cr.approvals.all()] == [False, False]

    cr = approve(demo.rev, cr, now, via="portal")
    assert cr.state == S.APPROVED


def test_staging_does_not_ask_for_a_team_reviewer(demo, now):
    irev = UserFactory(username="irev")
    bootstrap_grant(irev, "reviewer", demo.identity, demo.staging)
    cr = pending(demo, now, environment=demo.staging)

    assert approve(irev, cr, now).state == S.APPROVED
