"""G5: revoking takes effect at once, with its reason recorded."""
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from governance.selectors import has_duty
from tests.api.shortcuts import assignment_url, codes, grant_of


def holds_permission(user, duty, environment) -> bool:
    fresh = get_user_model().objects.get(pk=user.pk)  # guardian caches per user object
    return fresh.has_perm(f"governance.duty_{duty}", environment)


def test_a_manager_revokes_and_the_duty_is_gone_at_once(demo, api_as):
    assignment = grant_of(demo.dev, "developer", demo.development)
    assert holds_permission(demo.dev, "submit", demo.development)
    response = api_as(demo.mgr).post(assignment_url(assignment, "revoke"), {"reason": "Moved to the data team."},
                                     format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["ended_by"], body["end_reason"]) == ("revoked", "mgr", "Moved to the data team.")
    assert not has_duty(demo.dev, "submit", environment=demo.development)
    assert not holds_permission(demo.dev, "submit", demo.development)
    assert holds_permission(demo.dev, "submit", demo.staging)
    event = AuditEvent.objects.get(action="role.revoked", target_id=str(assignment.pk))
    assert event.actor == demo.mgr and event.data["reason"] == "Moved to the data team."


def test_security_may_revoke_in_any_team(demo, api_as):
    response = api_as(demo.sec).post(assignment_url(grant_of(demo.idev, "developer", demo.staging), "revoke"),
                                     {"reason": "Compromised laptop."}, format="json")
    assert response.status_code == 200


def test_a_grantee_may_give_up_their_own_grant(demo, api_as):
    response = api_as(demo.dev).post(assignment_url(grant_of(demo.dev, "developer", demo.production), "revoke"),
                                     {"reason": "No longer on call."}, format="json")
    assert response.status_code == 200
    assert response.json()["ended_by"] == "dev"


def test_an_auditor_sees_grants_but_cannot_revoke_them(demo, api_as):
    response = api_as(demo.auditor).post(assignment_url(grant_of(demo.dev, "developer", demo.staging), "revoke"),
                                         {"reason": "Looks odd."}, format="json")
    assert response.status_code == 403
    assert codes(response) == ["missing_duty"]


def test_a_reason_is_required(demo, api_as):
    client = api_as(demo.mgr)
    url = assignment_url(grant_of(demo.dev, "developer", demo.staging), "revoke")
    assert client.post(url, {}, format="json").json() == {"reason": ["This field is required."]}
    response = client.post(url, {"reason": "   "}, format="json")
    assert response.status_code == 400
    assert response.json() == {"reason": ["This field may not be blank."]}


def test_revoking_twice_is_a_conflict(demo, api_as):
    client = api_as(demo.mgr)
    url = assignment_url(grant_of(demo.dev, "developer", demo.staging), "revoke")
    assert client.post(url, {"reason": "Left."}, format="json").status_code == 200
    response = client.post(url, {"reason": "Left."}, format="json")
    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]
