"""``PATCH change-requests/{id}/``: the author edits a draft or pending change; a new artifact is a
new revision and dismisses earlier approvals (C3)."""
from audit.models import AuditEvent
from tests.api_releases.shortcuts import approved, change_url, codes, deployed, draft, pending


def test_the_author_edits_a_draft(demo, api_as):
    change = draft(demo, demo.dev, demo.staging)
    response = api_as(demo.dev).patch(change_url(change), {
        "title": "Tune the pool, carefully", "description": "", "contributors": ["dev2"],
        "ticket_url": "https://tickets.example.com/PAY-77",
    }, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "Tune the pool, carefully" and body["contributors"] == ["dev2"]
    assert body["revision"] == 1 and body["state"] == "draft"
    assert AuditEvent.objects.filter(action="change_request.updated", target_id=str(change.pk)).exists()


def test_a_new_artifact_dismisses_earlier_approvals(demo, api_as):
    change = approved(demo, demo.dev, demo.staging, reviewers=[demo.rev])
    response = api_as(demo.dev).patch(change_url(change), {"artifact": "payments-api:3.1.0"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["revision"], body["artifact"], body["approved_at"]) == (
        "pending", 2, "payments-api:3.1.0", None)
    [approval] = body["approvals"]
    assert approval["reviewer"] == "rev" and approval["revision"] == 1 and approval["stale"] is True

    again = api_as(demo.rev).post(change_url(change, "approve"), {"revision": 2, "comment": "Re-checked."},
                                  format="json")
    assert again.status_code == 200 and again.json()["state"] == "approved"


def test_only_the_author_edits(demo, api_as, nothing_written):
    change = pending(demo, demo.dev, demo.staging)
    client = api_as(demo.dev2)
    with nothing_written():
        response = client.patch(change_url(change), {"contributors": []}, format="json")
    assert response.status_code == 403
    assert codes(response) == ["not_author"]


def test_a_deployed_change_is_not_edited(demo, api_as, nothing_written):
    change = approved(demo, demo.dev, demo.staging)
    deployed(demo, change)
    client = api_as(demo.dev)
    with nothing_written():
        response = client.patch(change_url(change), {"artifact": "payments-api:9"}, format="json")
    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]
