"""C5–C8 over the API: who may not deploy what, and when; a refusal writes nothing."""
from datetime import timedelta

from django.utils import timezone

from releases import services
from releases.models import ChangeRequest, Deployment
from tests.api_releases.shortcuts import approved, change_url, codes, deployed, grant, pending
from tests.factories import set_control


def start(client, change):
    return client.post(change_url(change, "deployments"), {"pipeline_url": "https://ci.example.com/run/7"},
                       format="json")


def test_the_author_may_not_deploy_their_own_change(demo, api_as, nothing_written):
    grant(demo, demo.ops, "developer", demo.staging)
    change = approved(demo, demo.ops, demo.staging)
    client = api_as(demo.ops)
    with nothing_written():
        response = start(client, change)
    assert response.status_code == 403
    assert codes(response) == ["author_cannot_deploy"]


def test_an_approver_may_not_deploy_what_they_approved(demo, api_as, nothing_written):
    grant(demo, demo.rev, "operations", demo.staging)
    change = approved(demo, demo.dev, demo.staging, reviewers=[demo.rev])
    client = api_as(demo.rev)
    with nothing_written():
        response = start(client, change)
    assert response.status_code == 403
    assert codes(response) == ["approver_cannot_deploy"]


def test_a_pending_change_is_not_deployed(demo, api_as, nothing_written):
    change = pending(demo, demo.dev, demo.staging)
    client = api_as(demo.ops)
    with nothing_written():
        response = start(client, change)
    assert response.status_code == 403
    assert codes(response) == ["not_approved"]


def test_deploying_needs_the_deploy_duty(demo, api_as, nothing_written):
    change = approved(demo, demo.dev, demo.staging)
    client = api_as(demo.dev2)
    with nothing_written():
        response = start(client, change)
    assert response.status_code == 403
    assert codes(response) == ["missing_duty"]


def test_a_freeze_window_blocks_deployments(demo, api_as, nothing_written):
    change = approved(demo, demo.dev, demo.staging)
    now = timezone.now()
    set_control(by=demo.sec, control="releases.freezewindow", name="Black Friday", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1), environments=[demo.staging])
    client = api_as(demo.ops)
    with nothing_written():
        response = start(client, change)
    assert response.status_code == 403
    assert codes(response) == ["freeze_window_active"]
    assert "Black Friday" in response.json()["reasons"][0]["message"]


def test_production_needs_the_artifact_deployed_to_staging_first(demo, api_as, nothing_written):
    change = approved(demo, demo.dev, demo.production)
    client = api_as(demo.ops)
    with nothing_written():
        response = start(client, change)
    assert response.status_code == 403
    assert codes(response) == ["prior_environment_required"]


def test_production_accepts_an_artifact_that_went_through_staging(demo, api_as):
    staged = approved(demo, demo.dev, demo.staging)
    deployed(demo, staged)
    change = approved(demo, demo.dev, demo.production, artifact=staged.artifact)
    response = start(api_as(demo.ops), change)
    assert response.status_code == 201
    assert ChangeRequest.objects.get(pk=change.pk).state == ChangeRequest.State.DEPLOYING


def test_a_second_deployment_of_the_same_change_is_a_conflict(demo, api_as, nothing_written):
    change = approved(demo, demo.dev, demo.staging)
    client = api_as(demo.ops)
    assert start(client, change).status_code == 201
    with nothing_written():
        response = start(client, change)
    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]
    assert Deployment.objects.filter(change_request=change).count() == 1


def test_only_the_deployer_reports_the_outcome(demo, api_as, nothing_written):
    grant(demo, demo.rev2, "operations", demo.staging)
    change = approved(demo, demo.dev, demo.staging, reviewers=[demo.rev])
    deployment = services.deployment_start(actor=demo.ops, change_request=change)
    client = api_as(demo.rev2)
    with nothing_written():
        response = client.post(f"/api/v1/deployments/{deployment.pk}/finish/", {"outcome": "succeeded"},
                               format="json")
    assert response.status_code == 403
    assert codes(response) == ["not_deployer"]


def test_a_finished_deployment_is_not_finished_again(demo, api_as, nothing_written):
    change = approved(demo, demo.dev, demo.staging)
    deployment = deployed(demo, change)
    client = api_as(demo.ops)
    with nothing_written():
        response = client.post(f"/api/v1/deployments/{deployment.pk}/finish/", {"outcome": "failed"}, format="json")
    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]
