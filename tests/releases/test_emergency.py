"""C10: emergency changes need emergency_min_approvals (default 1) and, once deployed, a
post-implementation review (PIR) by an approve-duty holder who neither wrote nor deployed them."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from core.errors import Denied, InvalidState
from releases import services
from releases.models import ApprovalPolicy, ChangeRequest
from tests.factories import set_control, UserFactory, bootstrap_grant
from tests.releases.stories import approved_in_staging, deploy, events_for, pending, pending_in_production, reload

S = ChangeRequest.State


def emergency_in_production(demo, at, approver=None):
    cr = pending_in_production(demo, at, change_type="emergency", risk="high")
    return services.change_request_approve(actor=approver or demo.sec, change_request=cr, via="portal", at=at)


def review(actor, cr, at, notes="Root cause fixed; alerting added."):
    return services.change_request_review_pir(actor=actor, change_request=cr, notes=notes, at=at)


def test_one_approval_is_enough_for_an_emergency_in_production(demo, now):
    """Production asks two approvals of a normal change, one of an emergency (a team member's; a
    security approval as it is high risk)."""
    cr = emergency_in_production(demo, now, approver=demo.sec)

    assert cr.state == S.APPROVED


def test_an_emergency_still_needs_what_its_risk_asks(demo, now):
    cr = emergency_in_production(demo, now, approver=demo.rev)

    assert cr.state == S.PENDING, "high risk: the one approval must be security's"


def test_the_emergency_minimum_is_the_policys(demo, now):
    set_control(ApprovalPolicy.objects.get(environment=demo.staging), by=demo.admin, second=demo.sec, emergency_min_approvals=2)
    cr = pending(demo, now, environment=demo.staging, change_type="emergency")

    cr = services.change_request_approve(actor=demo.rev, change_request=cr, at=now)
    assert cr.state == S.PENDING
    cr = services.change_request_approve(actor=demo.rev2, change_request=cr, at=now)
    assert cr.state == S.APPROVED


def test_a_deployed_emergency_is_due_for_review_within_48_hours(demo, now):
    cr = emergency_in_production(demo, now)
    deployed_at = now + timedelta(minutes=20)

    deploy(demo, cr, deployed_at)

    cr = reload(cr)
    assert (cr.state, cr.deployed_at, cr.pir_due_at) == (S.DEPLOYED, deployed_at, deployed_at + timedelta(hours=48))


def test_the_review_deadline_follows_the_policy(demo, now):
    set_control(ApprovalPolicy.objects.get(environment=demo.production), by=demo.admin, second=demo.sec, pir_due_hours=24)
    cr = emergency_in_production(demo, now)

    deploy(demo, cr, now)

    assert reload(cr).pir_due_at == now + timedelta(hours=24)


def test_a_failed_emergency_deployment_sets_no_review(demo, now):
    cr = emergency_in_production(demo, now)

    deploy(demo, cr, now, outcome="failed")

    assert (reload(cr).state, reload(cr).pir_due_at) == (S.FAILED, None)


def test_a_normal_change_has_no_review_due(demo, now, nothing_written):
    cr = approved_in_staging(demo, now)
    deploy(demo, cr, now)

    assert reload(cr).pir_due_at is None
    with nothing_written(), pytest.raises(InvalidState):
        review(demo.rev2, cr, now)


def test_a_reviewer_who_neither_wrote_nor_deployed_completes_the_review(demo, now):
    cr = emergency_in_production(demo, now)
    deploy(demo, cr, now)

    cr = review(demo.rev, reload(cr), now + timedelta(hours=3))

    assert (cr.pir_by, cr.pir_at, cr.pir_notes) == (
        demo.rev, now + timedelta(hours=3), "Root cause fixed; alerting added."
    )
    assert cr.state == S.DEPLOYED
    [*_, event] = events_for(cr)
    assert (event.action, event.actor, event.data["overdue"]) == ("change_request.pir_completed", demo.rev, False)


def test_a_late_review_is_recorded_as_overdue(demo, now):
    cr = emergency_in_production(demo, now)
    deploy(demo, cr, now)

    review(demo.rev, reload(cr), now + timedelta(hours=49))

    assert events_for(cr)[-1].data["overdue"] is True


def test_a_rolled_back_emergency_is_reviewed_too(demo, now):
    cr = emergency_in_production(demo, now)
    deployment = deploy(demo, cr, now)
    services.deployment_rollback(actor=demo.ops, deployment=deployment, reason="Latency doubled.", at=now)

    assert review(demo.rev, reload(cr), now).pir_by == demo.rev


def test_the_author_may_not_review_their_emergency(demo, now, nothing_written):
    """dev3 writes emergencies and also reviews in staging: the author rule still holds."""
    dev3 = UserFactory(username="dev3")
    bootstrap_grant(dev3, "developer", demo.payments, demo.staging)
    bootstrap_grant(dev3, "reviewer", demo.payments, demo.staging)
    cr = pending(demo, now, author=dev3, environment=demo.staging, change_type="emergency")
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, at=now)
    deploy(demo, cr, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        review(dev3, reload(cr), now)

    assert refused.value.codes == ["author_cannot_review"]


def test_an_author_without_approve_hears_both_reasons(demo, now, nothing_written):
    cr = emergency_in_production(demo, now)
    deploy(demo, cr, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        review(demo.dev, reload(cr), now)

    assert refused.value.codes == ["missing_duty", "author_cannot_review"]


def test_the_deployer_may_not_review(demo, now, nothing_written):
    """ops also reviews in staging (no conflict outside production), and deployed this emergency."""
    bootstrap_grant(demo.ops, "reviewer", demo.payments, demo.staging)
    cr = pending(demo, now, environment=demo.staging, change_type="emergency")
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, at=now)
    deploy(demo, cr, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        review(demo.ops, reload(cr), now)

    assert refused.value.codes == ["deployer_cannot_review"]


def test_someone_without_approve_may_not_review(demo, now, nothing_written):
    cr = emergency_in_production(demo, now)
    deploy(demo, cr, now)

    for outsider, codes in ((demo.dev2, ["missing_duty"]), (demo.admin, ["missing_duty"]),
                            (demo.ops, ["missing_duty", "deployer_cannot_review"])):
        with nothing_written(), pytest.raises(Denied) as refused:
            review(outsider, reload(cr), now)
        assert refused.value.codes == codes


def test_a_review_is_done_once_and_says_something(demo, now, nothing_written):
    cr = emergency_in_production(demo, now)
    deploy(demo, cr, now)

    with nothing_written(), pytest.raises(ValidationError):
        review(demo.rev, reload(cr), now, notes="  ")
    review(demo.rev, reload(cr), now)
    with nothing_written(), pytest.raises(InvalidState):
        review(demo.rev2, reload(cr), now)


def test_an_emergency_not_yet_deployed_is_not_reviewed(demo, now, nothing_written):
    cr = emergency_in_production(demo, now)

    with nothing_written(), pytest.raises(InvalidState):
        review(demo.rev, cr, now)
