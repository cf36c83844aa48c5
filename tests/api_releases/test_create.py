"""C1 through ``POST /api/v1/change-requests/``: a draft, named by slugs and usernames."""
from audit.models import AuditEvent
from releases.models import ChangeRequest
from tests.api_releases.shortcuts import CHANGES, codes


def create(client, **body):
    return client.post(CHANGES, body, format="json")


def test_a_developer_opens_a_draft(demo, api_as):
    response = create(
        api_as(demo.dev), title="Retry refunds", description="Idempotent retries.", team="payments",
        environment="staging", change_type="emergency", risk="high", artifact="refunds:2.0.1",
        contributors=["dev2", "dev", "dev2"], ticket_url="https://tickets.example.com/PAY-9",
        emergency_reason="Refunds fail for every card since 09:12.",
    )
    assert response.status_code == 201
    body = response.json()
    change = ChangeRequest.objects.get(pk=body["id"])
    assert body == {
        "id": change.pk, "title": "Retry refunds", "description": "Idempotent retries.", "team": "payments",
        "environment": "staging", "change_type": "emergency", "risk": "high",
        "emergency_reason": "Refunds fail for every card since 09:12.", "artifact": "refunds:2.0.1", "revision": 1, "state": "draft", "author": "dev", "contributors": ["dev2"], "requested_reviewers": [],
        "ticket_url": "https://tickets.example.com/PAY-9", "implementation_plan": "", "backout_plan": "",
        "risk_impact": "", "planned_start": None, "planned_end": None, "affected_service": "", "source_url": "",
        "approvals": [], "created_at": body["created_at"],
        "submitted_at": None, "approved_at": None, "deployed_at": None, "closed_at": None, "close_reason": "",
        "pir_due_at": None, "pir_by": None, "pir_at": None,
    }
    event = AuditEvent.objects.get(action="change_request.created", target_id=str(change.pk))
    assert event.actor == demo.dev and event.data["contributors"] == ["dev2"]


def test_defaults_are_a_normal_medium_risk_change(demo, api_as):
    response = create(api_as(demo.dev2), title="Bump base image", team="payments", environment="development",
                      artifact="payments-api:2.14.1")
    assert response.status_code == 201
    assert (response.json()["change_type"], response.json()["risk"]) == ("normal", "medium")
    assert response.json()["contributors"] == [] and response.json()["ticket_url"] == ""


def test_opening_a_change_needs_submit_on_the_environment(demo, api_as, nothing_written):
    client = api_as(demo.ops)
    with nothing_written():
        response = create(client, title="Hotfix", team="payments", environment="staging", artifact="x:1")
    assert response.status_code == 403
    assert codes(response) == ["missing_duty"]


def test_a_change_belongs_to_a_team_the_author_is_in(demo, api_as, nothing_written):
    client = api_as(demo.idev)
    with nothing_written():
        response = create(client, title="Borrow payments", team="payments", environment="staging", artifact="x:1")
    assert response.status_code == 403
    assert codes(response) == ["not_team_member"]


def test_every_reason_that_applies_is_given(demo, api_as, nothing_written):
    client = api_as(demo.rev)
    with nothing_written():
        response = create(client, title="Sneak in", team="identity", environment="staging", artifact="x:1")
    assert response.status_code == 403
    assert sorted(codes(response)) == ["missing_duty", "not_team_member"]


def test_no_credentials_is_a_401(demo, api_as, nothing_written):
    client = api_as(None)
    with nothing_written():
        response = create(client, title="Anon", team="payments", environment="staging", artifact="x:1")
        listing = client.get(CHANGES)
    assert response.status_code == 401 and listing.status_code == 401
    assert set(response.json()) == {"detail"}
