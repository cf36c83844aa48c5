"""The deployer reports how a deployment went; an operator rolls a successful one back, saying why."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from governance import services as governance
from core.errors import Denied, InvalidState
from governance.models import RoleAssignment
from releases import services
from releases.models import ChangeRequest, Deployment
from tests.factories import UserFactory, bootstrap_grant
from tests.releases.stories import approved_in_production, approved_in_staging, deploy, events_for, reload

S = ChangeRequest.State


def finish(actor, deployment, at, outcome="succeeded", notes=""):
    return services.deployment_finish(actor=actor, deployment=deployment, outcome=outcome, notes=notes, at=at)


@pytest.fixture
def ops2(demo):
    user = UserFactory(username="ops2")
    bootstrap_grant(user, "operations", demo.payments, demo.staging)
    bootstrap_grant(user, "operations", demo.payments, demo.production)
    return user


def test_the_deployer_reports_success(demo, now):
    cr = approved_in_staging(demo, now)
    deployment = services.deployment_start(actor=demo.ops, change_request=cr, at=now)

    deployment = finish(demo.ops, deployment, now + timedelta(minutes=7), notes="All pods healthy.")

    assert (deployment.state, deployment.finished_at, deployment.notes) == (
        Deployment.State.SUCCEEDED, now + timedelta(minutes=7), "All pods healthy."
    )
    cr = reload(cr)
    assert (cr.state, cr.deployed_at, cr.closed_at) == (S.DEPLOYED, now + timedelta(minutes=7), None)
    [*_, event] = events_for(cr)
    assert (event.action, event.data["from_state"], event.data["to_state"]) == (
        "deployment.succeeded", "deploying", "deployed"
    )


def test_the_deployer_reports_failure(demo, now):
    cr = approved_in_staging(demo, now)
    deployment = services.deployment_start(actor=demo.ops, change_request=cr, at=now)

    deployment = finish(demo.ops, deployment, now, outcome="failed", notes="Migration timed out.")

    assert deployment.state == Deployment.State.FAILED
    cr = reload(cr)
    assert (cr.state, cr.deployed_at, cr.closed_at) == (S.FAILED, None, now)
    assert events_for(cr)[-1].action == "deployment.failed"


def test_only_the_deployer_reports_the_outcome(demo, now, ops2, nothing_written):
    cr = approved_in_staging(demo, now)
    deployment = services.deployment_start(actor=demo.ops, change_request=cr, at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        finish(ops2, deployment, now)

    assert refused.value.codes == ["not_deployer"]


@pytest.mark.parametrize(
    "first, second", [("succeeded", "succeeded"), ("failed", "succeeded"), ("succeeded", "failed")]
)
def test_a_deployment_is_finished_once(demo, now, nothing_written, first, second):
    cr = approved_in_staging(demo, now)
    deployment = services.deployment_start(actor=demo.ops, change_request=cr, at=now)
    finish(demo.ops, deployment, now, outcome=first)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        finish(demo.ops, deployment, now, outcome=second)

    assert refused.value.status_code == 409


def test_an_outcome_is_succeeded_or_failed(demo, now, nothing_written):
    cr = approved_in_staging(demo, now)
    deployment = services.deployment_start(actor=demo.ops, change_request=cr, at=now)

    with nothing_written(), pytest.raises(ValidationError) as refused:
        finish(demo.ops, deployment, now, outcome="rolled_back")

    assert "outcome" in refused.value.message_dict


def test_an_emergency_that_succeeded_is_due_for_review(demo, now):
    cr = approved_in_production(demo, now, change_type="emergency", reviewers=(demo.sec,))
    deployment = services.deployment_start(actor=demo.ops, change_request=cr, at=now)

    finish(demo.ops, deployment, now + timedelta(hours=1))

    assert reload(cr).pir_due_at == now + timedelta(hours=49)


def test_another_operator_rolls_back_a_successful_deployment(demo, now, ops2):
    cr = approved_in_staging(demo, now)
    deployment = deploy(demo, cr, now)

    deployment = services.deployment_rollback(
        actor=ops2, deployment=deployment, reason="  Error rate doubled.  ", at=now + timedelta(hours=1)
    )

    assert (deployment.state, deployment.rolled_back_at, deployment.rollback_reason) == (
        Deployment.State.ROLLED_BACK, now + timedelta(hours=1), "Error rate doubled."
    )
    assert reload(cr).state == S.ROLLED_BACK
    [*_, event] = events_for(cr)
    assert (event.action, event.actor, event.data["from_state"], event.data["to_state"], event.data["reason"]) == (
        "deployment.rolled_back", ops2, "deployed", "rolled_back", "Error rate doubled."
    )


def test_a_rollback_needs_a_reason(demo, now, nothing_written):
    deployment = deploy(demo, approved_in_staging(demo, now), now)

    with nothing_written(), pytest.raises(ValidationError) as refused:
        services.deployment_rollback(actor=demo.ops, deployment=deployment, reason="   ", at=now)

    assert "reason" in refused.value.message_dict


@pytest.mark.parametrize("who", ["rev", "dev", "sec", "admin"])
def test_a_rollback_needs_deploy_on_the_environment(demo, now, nothing_written, who):
    deployment = deploy(demo, approved_in_staging(demo, now), now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_rollback(actor=getattr(demo, who), deployment=deployment, reason="Bad.", at=now)

    assert refused.value.codes == ["missing_duty"]


def test_an_operator_whose_grant_was_revoked_may_not_roll_back(demo, now, nothing_written):
    deployment = deploy(demo, approved_in_staging(demo, now), now)
    grant = RoleAssignment.objects.get(user=demo.ops, role__slug="operations", environment=demo.staging)
    governance.role_assignment_revoke(actor=demo.mgr, assignment=grant, reason="left the rota", at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_rollback(actor=demo.ops, deployment=deployment, reason="Bad.", at=now)

    assert refused.value.codes == ["missing_duty"]


@pytest.mark.parametrize("state", ["running", "failed", "rolled_back"])
def test_only_a_successful_deployment_rolls_back(demo, now, nothing_written, state):
    cr = approved_in_staging(demo, now)
    deployment = services.deployment_start(actor=demo.ops, change_request=cr, at=now)
    if state == "failed":
        finish(demo.ops, deployment, now, outcome="failed")
    if state == "rolled_back":
        finish(demo.ops, deployment, now)
        services.deployment_rollback(actor=demo.ops, deployment=deployment, reason="Bad.", at=now)

    with nothing_written(), pytest.raises(InvalidState):
        services.deployment_rollback(actor=demo.ops, deployment=deployment, reason="Bad again.", at=now)
