"""``reject/`` closes a pending change (C4); ``cancel/`` withdraws one that has not started deploying."""
from audit.models import AuditEvent
from tests.api_releases.shortcuts import approved, change_url, codes, deployed, pending


def test_a_reviewer_rejects_a_pending_change(demo, api_as):
    change = pending(demo, demo.dev, demo.staging)
    response = api_as(demo.rev).post(change_url(change, "reject"), {"revision": 1, "comment": "Add a rollback plan."},
                                     format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "rejected" and body["close_reason"] == "Add a rollback plan." and body["closed_at"]
    [decision] = body["approvals"]
    assert (decision["reviewer"], decision["decision"], decision["via"]) == ("rev", "rejected", "api")


def test_the_author_cancels_an_approved_change(demo, api_as):
    change = approved(demo, demo.dev, demo.staging)
    response = api_as(demo.dev).post(change_url(change, "cancel"), {"reason": "Superseded by 3.2."}, format="json")
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled" and response.json()["close_reason"] == "Superseded by 3.2."
    event = AuditEvent.objects.get(action="change_request.cancelled", target_id=str(change.pk))
    assert event.actor == demo.dev and event.data["from_state"] == "approved"


def test_a_manager_of_the_team_may_cancel(demo, api_as):
    change = pending(demo, demo.dev, demo.staging)
    response = api_as(demo.mgr).post(change_url(change, "cancel"), {"reason": "Team decision."}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"


def test_a_reviewer_may_not_cancel(demo, api_as, nothing_written):
    change = pending(demo, demo.dev, demo.staging)
    client = api_as(demo.rev)
    with nothing_written():
        response = client.post(change_url(change, "cancel"), {"reason": "Not convinced."}, format="json")
    assert response.status_code == 403
    assert codes(response) == ["not_author"]


def test_a_deployed_change_is_not_cancelled(demo, api_as, nothing_written):
    change = approved(demo, demo.dev, demo.staging)
    deployed(demo, change)
    client = api_as(demo.dev)
    with nothing_written():
        response = client.post(change_url(change, "cancel"), {"reason": "Too late."}, format="json")
    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]
