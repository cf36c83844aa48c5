"""``POST change-requests/{id}/submit/``: a draft goes for review, or is approved by the policy (C9)."""
from audit.models import AuditEvent
from tests.api_releases.shortcuts import approved, change_url, codes, draft


def test_the_author_submits_a_draft_for_review(demo, api_as):
    change = draft(demo, demo.dev, demo.staging)
    response = api_as(demo.dev).post(change_url(change, "submit"))
    assert response.status_code == 200
    assert response.json()["state"] == "pending" and response.json()["approvals"] == []
    assert AuditEvent.objects.filter(action="change_request.submitted", target_id=str(change.pk)).count() == 1


def test_a_standard_low_risk_change_is_approved_by_the_policy(demo, api_as):
    change = draft(demo, demo.dev, demo.staging, change_type="standard", risk="low")
    response = api_as(demo.dev).post(change_url(change, "submit"))
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "approved" and body["approved_at"]
    [approval] = body["approvals"]
    assert approval["reviewer"] is None and approval["via"] == "auto" and approval["decision"] == "approved"
    assert "policy of staging" in approval["comment"]


def test_a_change_that_needs_no_approval_is_approved_on_submit(demo, api_as):
    change = draft(demo, demo.dev, demo.development)
    response = api_as(demo.dev).post(change_url(change, "submit"))
    assert response.json()["state"] == "approved" and response.json()["approvals"] == []


def test_only_the_author_submits(demo, api_as, nothing_written):
    change = draft(demo, demo.dev, demo.staging)
    client = api_as(demo.dev2)
    with nothing_written():
        response = client.post(change_url(change, "submit"))
    assert response.status_code == 403
    assert codes(response) == ["not_author"]


def test_a_change_is_submitted_once(demo, api_as, nothing_written):
    change = approved(demo, demo.dev, demo.staging)
    client = api_as(demo.dev)
    with nothing_written():
        response = client.post(change_url(change, "submit"))
    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]
