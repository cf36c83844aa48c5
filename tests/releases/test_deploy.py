"""C5: an operator who neither wrote, contributed to nor approved the change deploys it, once it is
approved with approvals still valid."""
import pytest

from core.errors import Denied, InvalidState
from releases import services
from releases.models import ChangeRequest, Deployment
from tests.factories import UserFactory, bootstrap_grant
from tests.releases.stories import (
    approved_in_production,
    approved_in_staging,
    deploy,
    draft,
    events_for,
    new_artifact,
    pending,
    reload,
)

S = ChangeRequest.State


def start(actor, cr, at):
    return services.deployment_start(actor=actor, change_request=cr, pipeline_url="https://ci.example.com/run/7", at=at)


def test_an_operator_deploys_an_approved_change(demo, now):
    cr = approved_in_staging(demo, now)

    deployment = start(demo.ops, cr, now)

    assert (deployment.state, deployment.deployer, deployment.environment) == ("running", demo.ops, demo.staging)
    assert (deployment.artifact, deployment.revision, deployment.started_at) == (cr.artifact, 1, now)
    assert reload(cr).state == S.DEPLOYING
    [*_, event] = events_for(cr)
    assert (event.action, event.actor, event.data["deployment"]) == ("deployment.started", demo.ops, deployment.pk)


def test_production_deploys_after_two_sign_offs_and_staging(demo, now):
    cr = approved_in_production(demo, now)

    assert start(demo.ops, cr, now).environment == demo.production


def test_the_author_may_not_deploy_their_change(demo, now, nothing_written):
    """dev also holds operations in staging (allowed there: the conflict rules cover production)."""
    bootstrap_grant(demo.dev, "operations", demo.payments, demo.staging)
    cr = approved_in_staging(demo, now, author=demo.dev)

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo.dev, cr, now)

    assert refused.value.codes == ["author_cannot_deploy"]


def test_an_author_without_deploy_hears_both_reasons(demo, now, nothing_written):
    cr = approved_in_staging(demo, now, author=demo.dev)

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo.dev, cr, now)

    assert refused.value.codes == ["missing_duty", "author_cannot_deploy"]


def test_a_contributor_may_not_deploy(demo, now, nothing_written):
    cr = approved_in_staging(demo, now, contributors=["ops"])

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo.ops, cr, now)

    assert refused.value.codes == ["contributor_cannot_deploy"]


def test_an_approver_may_not_deploy(demo, now, nothing_written):
    bootstrap_grant(demo.rev, "operations", demo.payments, demo.staging)
    cr = approved_in_staging(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo.rev, cr, now)

    assert refused.value.codes == ["approver_cannot_deploy"]


def test_having_approved_an_earlier_revision_still_bars_deploying(demo, now, nothing_written):
    """rev approved revision 1; rev2 approved the rebuild. rev took part in the decision all the same."""
    bootstrap_grant(demo.rev, "operations", demo.payments, demo.staging)
    cr = approved_in_staging(demo, now)
    cr = services.change_request_update(actor=demo.dev, change_request=cr, changes={"artifact": new_artifact()}, at=now)
    cr = services.change_request_approve(actor=demo.rev2, change_request=cr, at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo.rev, cr, now)

    assert refused.value.codes == ["approver_cannot_deploy"]


def test_a_reviewer_without_deploy_may_not_deploy(demo, now, nothing_written):
    cr = approved_in_staging(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo.rev2, cr, now)

    assert refused.value.codes == ["missing_duty"]


def test_an_operator_of_staging_only_may_not_deploy_to_production(demo, now, nothing_written):
    ops2 = UserFactory(username="ops2")
    bootstrap_grant(ops2, "operations", demo.payments, demo.staging)
    cr = approved_in_production(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        start(ops2, cr, now)

    assert refused.value.codes == ["missing_duty"]


def test_a_contributor_without_deploy_hears_both_reasons(demo, now, nothing_written):
    cr = approved_in_staging(demo, now, author=demo.dev, contributors=["dev2"])

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo.dev2, cr, now)

    assert refused.value.codes == ["missing_duty", "contributor_cannot_deploy"]


def test_an_approver_who_later_became_a_contributor_hears_every_reason(demo, now, nothing_written):
    """rev approved revision 1; CI then reported rev's commit, rev2 approved revision 2."""
    cr = approved_in_staging(demo, now)
    cr = services.change_request_update(actor=demo.dev, change_request=cr, changes={"contributors": ["rev"]}, at=now)
    cr = services.change_request_approve(actor=demo.rev2, change_request=cr, at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo.rev, cr, now)

    assert refused.value.codes == ["missing_duty", "contributor_cannot_deploy", "approver_cannot_deploy"]


@pytest.mark.parametrize("state", ["draft", "pending", "rejected"])
def test_a_change_that_is_not_approved_is_not_deployed(demo, now, nothing_written, state):
    cr = draft(demo, now) if state == "draft" else pending(demo, now)
    if state == "rejected":
        cr = services.change_request_reject(actor=demo.rev, change_request=cr, comment="No.", at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo.ops, cr, now)

    assert refused.value.codes == ["not_approved"]


@pytest.mark.parametrize("state", ["deploying", "deployed", "failed", "cancelled"])
def test_a_change_past_approval_is_not_deployed_again(demo, now, nothing_written, state):
    cr = approved_in_staging(demo, now)
    if state == "deploying":
        start(demo.ops, cr, now)
    elif state == "cancelled":
        services.change_request_cancel(actor=demo.dev, change_request=cr, reason="Superseded.", at=now)
    else:
        deploy(demo, cr, now, outcome="succeeded" if state == "deployed" else "failed")
    assert reload(cr).state == state

    with nothing_written(), pytest.raises(InvalidState) as refused:
        start(demo.ops, cr, now)

    assert refused.value.codes == ["invalid_state"]
    assert Deployment.objects.filter(change_request=cr).count() == (0 if state == "cancelled" else 1)
