"""``POST deployments/{id}/rollback/``: operations rolls back a successful deployment."""
from releases import services
from tests.api_releases.shortcuts import approved, codes, deployed, deployment_url


def test_operations_rolls_back_a_successful_deployment(demo, api_as):
    change = approved(demo, demo.dev, demo.staging)
    deployment = deployed(demo, change)
    client = api_as(demo.ops)
    response = client.post(deployment_url(deployment, "rollback"), {"reason": "Error rate doubled."},
                           format="json")
    assert response.status_code == 200
    assert response.json()["state"] == "rolled_back" and response.json()["rollback_reason"] == "Error rate doubled."
    assert client.get(f"/api/v1/change-requests/{change.pk}/").json()["state"] == "rolled_back"


def test_rolling_back_needs_the_deploy_duty(demo, api_as, nothing_written):
    deployment = deployed(demo, approved(demo, demo.dev, demo.staging))
    client = api_as(demo.dev)
    with nothing_written():
        response = client.post(deployment_url(deployment, "rollback"), {"reason": "Mine."}, format="json")
    assert response.status_code == 403
    assert codes(response) == ["missing_duty"]


def test_a_running_deployment_is_not_rolled_back(demo, api_as, nothing_written):
    deployment = services.deployment_start(actor=demo.ops, change_request=approved(demo, demo.dev, demo.staging))
    client = api_as(demo.ops)
    with nothing_written():
        response = client.post(deployment_url(deployment, "rollback"), {"reason": "Abort."}, format="json")
    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]


def test_a_deployment_is_retrieved_by_id(demo, api_as):
    deployment = deployed(demo, approved(demo, demo.dev, demo.staging))
    body = api_as(demo.dev).get(deployment_url(deployment)).json()
    assert (body["id"], body["state"], body["deployer"], body["environment"]) == (
        deployment.pk, "succeeded", "ops", "staging")
