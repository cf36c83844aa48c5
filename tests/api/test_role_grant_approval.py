"""G4: a privileged grant waits for a second person; rejecting and withdrawing a pending grant."""
import pytest

from audit.models import AuditEvent
from governance.selectors import has_duty
from tests.api.shortcuts import ASSIGNMENTS, assignment_url, codes, grant_of, in_days


@pytest.fixture
def pending(demo, api_as):
    """mgr asks for dev2 to review production: privileged (production), so it waits."""
    response = api_as(demo.mgr).post(
        ASSIGNMENTS,
        {"user": "dev2", "role": "reviewer", "team": "payments", "environment": "production",
         "justification": "Second production reviewer for the release train.", "expires_at": in_days(30)},
        format="json",
    )
    assert response.status_code == 201
    return response.json()


def test_a_privileged_grant_starts_pending_and_grants_nothing_yet(demo, pending):
    assert pending["status"] == "pending"
    assert pending["approved_by"] is None and pending["approved_at"] is None
    assert not has_duty(demo.dev2, "approve", environment=demo.production)
    assert AuditEvent.objects.filter(action="role.grant_requested", target_id=str(pending["id"])).exists()


def test_security_approves_it_and_the_duty_takes_effect(demo, api_as, pending):
    response = api_as(demo.sec).post(assignment_url(pending["id"], "approve"))
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["approved_by"], body["requested_by"]) == ("active", "sec", "mgr")
    assert body["approved_at"] is not None
    assert has_duty(demo.dev2, "approve", environment=demo.production)
    event = AuditEvent.objects.get(action="role.grant_approved", target_id=str(pending["id"]))
    assert event.actor == demo.sec


def test_the_requester_cannot_approve_their_own_request(demo, api_as, pending):
    response = api_as(demo.mgr).post(assignment_url(pending["id"], "approve"))
    assert response.status_code == 403
    assert codes(response) == ["four_eyes_grant"]


def test_the_grantee_cannot_approve_it_either(demo, api_as, pending):
    response = api_as(demo.dev2).post(assignment_url(pending["id"], "approve"))
    assert response.status_code == 403
    assert sorted(codes(response)) == ["four_eyes_grant", "missing_duty"]


def test_seeing_a_grant_is_not_enough_to_approve_it(demo, api_as, pending):
    response = api_as(demo.auditor).post(assignment_url(pending["id"], "approve"))
    assert response.status_code == 403
    assert codes(response) == ["missing_duty"]


def test_a_second_manager_of_the_team_may_approve(demo, api_as, pending):
    """Any manage_roles holder of the team who is neither requester nor grantee counts (G4)."""
    second = api_as(demo.admin).post(
        ASSIGNMENTS,
        {"user": "rev", "role": "manager", "team": "payments", "justification": "Deputy manager.",
         "expires_at": in_days(30)},
        format="json",
    )
    assert api_as(demo.sec).post(assignment_url(second.json()["id"], "approve")).status_code == 200
    response = api_as(demo.rev).post(assignment_url(pending["id"], "approve"))
    assert response.status_code == 200
    assert response.json()["approved_by"] == "rev"


def test_only_pending_grants_can_be_approved(demo, api_as, pending):
    client = api_as(demo.sec)
    assert client.post(assignment_url(pending["id"], "approve")).status_code == 200
    response = client.post(assignment_url(pending["id"], "approve"))
    assert response.status_code == 409
    body = response.json()
    assert set(body) == {"detail", "reasons"}
    assert codes(response) == ["invalid_state"]
    assert "active" in body["reasons"][0]["message"]


def test_an_already_active_plain_grant_cannot_be_approved(demo, api_as):
    response = api_as(demo.sec).post(assignment_url(grant_of(demo.dev, "developer", demo.development), "approve"))
    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]


def test_security_rejects_a_pending_grant(demo, api_as, pending):
    response = api_as(demo.sec).post(assignment_url(pending["id"], "reject"), {"reason": "Not needed."},
                                     format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["ended_by"], body["end_reason"]) == ("rejected", "sec", "Not needed.")
    assert body["ended_at"] is not None
    assert not has_duty(demo.dev2, "approve", environment=demo.production)


def test_the_requester_may_withdraw_without_a_reason(demo, api_as, pending):
    response = api_as(demo.mgr).post(assignment_url(pending["id"], "reject"))
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"


def test_the_grantee_cannot_reject_it(demo, api_as, pending):
    response = api_as(demo.dev2).post(assignment_url(pending["id"], "reject"), {"reason": "No thanks."},
                                      format="json")
    assert response.status_code == 403
    assert "missing_duty" in codes(response)


def test_only_pending_grants_can_be_rejected(demo, api_as):
    response = api_as(demo.sec).post(assignment_url(grant_of(demo.dev, "developer", demo.development), "reject"))
    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]
