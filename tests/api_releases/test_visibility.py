"""V1 over the API: a change request, its approvals and deployments are visible to members of its
team and to audit viewers; to everyone else they do not exist (404), whatever the verb."""
import pytest

from releases.models import ChangeRequest, Deployment
from tests.api_releases.shortcuts import CHANGES, DEPLOYMENTS, approved, change_url, deployment_url, pending
from tests.factories import UserFactory, bootstrap_grant


@pytest.fixture
def payments_change(demo):
    return pending(demo, demo.dev, demo.staging)


def test_another_team_sees_none_of_payments_changes(demo, api_as):
    client = api_as(demo.idev)
    identity_change = client.post(CHANGES, {"title": "Passkey login", "team": "identity", "environment": "staging",
                                            "artifact": "identity-api:8.1.0"}, format="json")
    assert identity_change.status_code == 201

    listing = client.get(CHANGES).json()
    assert [change["id"] for change in listing["results"]] == [identity_change.json()["id"]]
    assert listing["count"] == 1
    assert client.get(DEPLOYMENTS).json()["count"] == 0


@pytest.mark.parametrize("url", ["", "gate/?action=deploy", "gate/?action=approve", "gate/?action=nonsense"])
def test_a_payments_change_is_a_404_to_identity(demo, api_as, payments_change, url):
    response = api_as(demo.idev).get(change_url(payments_change) + url)
    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("verb, body", [
    ("submit", {}), ("approve", {"comment": "ok"}), ("reject", {"comment": "no"}), ("cancel", {"reason": "dup"}),
    ("deployments", {}),
])
def test_acting_on_an_invisible_change_is_a_404_and_writes_nothing(demo, api_as, nothing_written, payments_change,
                                                                    verb, body):
    client = api_as(demo.idev)
    with nothing_written():
        response = client.post(change_url(payments_change, verb), body, format="json")
        edit = client.patch(change_url(payments_change), {"title": "Mine now"}, format="json")
    assert response.status_code == 404 and edit.status_code == 404


def test_deployments_of_an_invisible_change_are_404(demo, api_as, nothing_written):
    deployment = Deployment.objects.filter(change_request__team=demo.payments).first()
    client = api_as(demo.idev)
    with nothing_written():
        read = client.get(deployment_url(deployment))
        rollback = client.post(deployment_url(deployment, "rollback"), {"reason": "x"}, format="json")
        finish = client.post(deployment_url(deployment, "finish"), {"outcome": "failed"}, format="json")
    assert read.status_code == rollback.status_code == finish.status_code == 404


def test_an_audit_viewer_outside_the_team_sees_every_change(demo, api_as):
    outsider = UserFactory(username="external-auditor")
    bootstrap_grant(outsider, "compliance", demo.identity)
    listing = api_as(outsider).get(CHANGES).json()
    assert listing["count"] == ChangeRequest.objects.count()


def test_team_members_see_their_team_changes_with_approvals(demo, api_as):
    change = approved(demo, demo.dev, demo.staging, reviewers=[demo.rev])
    response = api_as(demo.mgr).get(change_url(change))
    assert response.status_code == 200
    assert [approval["reviewer"] for approval in response.json()["approvals"]] == ["rev"]
