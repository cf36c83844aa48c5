"""C8: production asks that the same artifact was first deployed successfully to staging."""
import pytest

from core.errors import Denied
from releases import services
from tests.releases.stories import (
    approved_in_production,
    approved_in_staging,
    deploy,
    new_artifact,
    pending,
    reload,
)


def sign_off(demo, cr, at):
    for reviewer in (demo.rev, demo.rev2):
        cr = services.change_request_approve(actor=reviewer, change_request=cr, via="portal", at=at)
    return cr


def test_an_artifact_never_seen_in_staging_may_not_reach_production(demo, now, nothing_written):
    cr = approved_in_production(demo, now, stage=False)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=now)

    assert refused.value.codes == ["prior_environment_required"]
    assert cr.artifact in refused.value.messages()[0]


def test_once_staging_succeeded_the_same_artifact_may_go_to_production(demo, now, nothing_written):
    artifact = new_artifact()
    production = sign_off(demo, pending(demo, now, environment=demo.production, artifact=artifact), now)
    staging = approved_in_staging(demo, now, artifact=artifact)

    with nothing_written(), pytest.raises(Denied):
        services.deployment_start(actor=demo.ops, change_request=production, at=now)

    deployment = services.deployment_start(actor=demo.ops, change_request=staging, at=now)
    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=production, at=now)
    assert refused.value.codes == ["prior_environment_required"], "a running staging deployment is not yet a success"

    services.deployment_finish(actor=demo.ops, deployment=deployment, outcome="succeeded", at=now)
    assert services.deployment_start(actor=demo.ops, change_request=production, at=now)


@pytest.mark.parametrize("outcome", ["failed", "rolled_back"])
def test_a_staging_deployment_that_failed_or_was_rolled_back_does_not_count(demo, now, nothing_written, outcome):
    artifact = new_artifact()
    staging = approved_in_staging(demo, now, artifact=artifact)
    deployment = deploy(demo, staging, now, outcome="failed" if outcome == "failed" else "succeeded")
    if outcome == "rolled_back":
        services.deployment_rollback(actor=demo.ops, deployment=deployment, reason="Error rate doubled.", at=now)
    production = sign_off(demo, pending(demo, now, environment=demo.production, artifact=artifact), now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=production, at=now)

    assert refused.value.codes == ["prior_environment_required"]


def test_another_artifact_in_staging_does_not_count(demo, now, nothing_written):
    """The production change was rebuilt after staging: the new build has not been staged."""
    cr = approved_in_production(demo, now)
    cr = services.change_request_update(actor=demo.dev, change_request=cr, changes={"artifact": new_artifact()}, at=now)
    cr = sign_off(demo, cr, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=now)

    assert refused.value.codes == ["prior_environment_required"]
    assert reload(cr).state == "approved"


def test_staging_itself_asks_for_no_prior_environment(demo, now):
    assert services.deployment_start(actor=demo.ops, change_request=approved_in_staging(demo, now), at=now)
