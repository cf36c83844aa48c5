"""C9: standard, low-risk changes are approved by the policy where it allows it (staging); the
approval is recorded with no reviewer, via "auto", naming the policy."""
import pytest

from core.errors import Denied
from releases import services
from releases.models import Approval, ApprovalPolicy, ChangeRequest
from tests.factories import set_control, bootstrap_grant
from tests.releases.stories import events_for, pending

S = ChangeRequest.State


def test_a_standard_low_risk_staging_change_is_approved_on_submit(demo, now):
    cr = pending(demo, now, environment=demo.staging, change_type="standard", risk="low")

    assert (cr.state, cr.approved_at) == (S.APPROVED, now)
    [approval] = cr.approvals.all()
    assert approval.reviewer is None
    assert (approval.via, approval.decision, approval.revision, approval.artifact) == (
        Approval.Via.AUTO, Approval.Decision.APPROVED, 1, cr.artifact
    )
    assert "policy of staging" in approval.comment
    [created, submitted] = events_for(cr)
    assert submitted.action == "change_request.submitted"
    assert submitted.actor == demo.dev, "the author submitted; the approval itself names no person"
    assert (submitted.data["from_state"], submitted.data["to_state"], submitted.data["auto_approved"]) == (
        "draft", "approved", True
    )


def test_an_auto_approved_change_is_deployed_like_any_other(demo, now):
    cr = pending(demo, now, environment=demo.staging, change_type="standard", risk="low")

    assert services.deployment_start(actor=demo.ops, change_request=cr, at=now).state == "running"


@pytest.mark.parametrize(
    "change_type, risk",
    [("normal", "low"), ("standard", "medium"), ("standard", "high"), ("emergency", "low")],
)
def test_other_changes_wait_for_a_reviewer(demo, now, change_type, risk):
    cr = pending(demo, now, environment=demo.staging, change_type=change_type, risk=risk)

    assert cr.state == S.PENDING
    assert cr.approvals.count() == 0
    assert events_for(cr)[-1].data["auto_approved"] is False


def test_production_does_not_auto_approve(demo, now):
    cr = pending(demo, now, environment=demo.production, change_type="standard", risk="low")

    assert cr.state == S.PENDING
    assert cr.approvals.count() == 0


def test_a_reviewer_may_still_reject_what_was_never_auto_approved(demo, now):
    cr = pending(demo, now, environment=demo.staging, change_type="standard", risk="medium")

    assert services.change_request_reject(actor=demo.rev, change_request=cr, comment="No.", at=now).state == S.REJECTED


def test_the_auto_approval_makes_nobody_an_approver(demo, now, nothing_written):
    """The author is still barred from deploying; the system's approval bars nobody else."""
    bootstrap_grant(demo.dev, "operations", demo.payments, demo.staging)
    cr = pending(demo, now, environment=demo.staging, change_type="standard", risk="low", author=demo.dev)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.dev, change_request=cr, at=now)

    assert refused.value.codes == ["author_cannot_deploy"]


def test_once_staging_stops_allowing_it_no_change_is_auto_approved(demo, now):
    set_control(ApprovalPolicy.objects.get(environment=demo.staging), by=demo.admin, second=demo.sec, allow_auto_approve_standard=False)

    cr = pending(demo, now, environment=demo.staging, change_type="standard", risk="low")

    assert cr.state == S.PENDING
    assert cr.approvals.count() == 0
