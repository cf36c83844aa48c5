"""G1–G3 through ``POST /api/v1/role-assignments/``: who may grant what to whom."""
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from governance import services
from governance.models import RoleAssignment
from governance.selectors import has_duty
from tests.api.shortcuts import ASSIGNMENTS, codes, grant_of, in_days


def grant(client, **body):
    return client.post(ASSIGNMENTS, body, format="json")


def test_a_manager_grants_a_team_member_a_plain_role_at_once(demo, api_as):
    response = grant(api_as(demo.mgr), user="dev2", role="operations", team="payments", environment="development",
                     justification="Runs the dev deploys this sprint.")
    assert response.status_code == 201
    body = response.json()
    assignment = RoleAssignment.objects.get(pk=body["id"])
    assert body == {
        "id": assignment.pk, "user": "dev2", "role": "operations", "team": "payments", "environment": "development",
        "justification": "Runs the dev deploys this sprint.", "status": "active", "requested_by": "mgr",
        "approved_by": None, "created_at": body["created_at"], "approved_at": body["approved_at"],
        "expires_at": None, "ended_at": None, "ended_by": None, "end_reason": "", "last_used_at": None,
        "sod_exception": None,
    }
    assert body["approved_at"] == body["created_at"]
    assert has_duty(demo.dev2, "deploy", environment=demo.development)
    event = AuditEvent.objects.get(action="role.granted", target_id=str(assignment.pk))
    assert event.actor == demo.mgr and event.data["user"] == "dev2"


def test_a_superuser_may_grant_in_any_team(demo, api_as):
    response = grant(api_as(demo.admin), user="idev", role="reviewer", team="identity", environment="staging",
                     justification="Second pair of eyes for identity.")
    assert response.status_code == 201
    assert response.json()["status"] == "active"


def test_nobody_grants_to_themselves(demo, api_as):
    response = grant(api_as(demo.mgr), user="mgr", role="reviewer", team="payments", environment="staging",
                     justification="I will review too.")
    assert response.status_code == 403
    assert codes(response) == ["self_grant"]
    assert response.json()["detail"]


def test_granting_needs_manage_roles_in_the_team(demo, api_as):
    response = grant(api_as(demo.dev), user="dev2", role="reviewer", team="payments", environment="staging",
                     justification="Helping out.")
    assert response.status_code == 403
    assert codes(response) == ["missing_duty"]


def test_a_manager_of_one_team_cannot_grant_in_another(demo, api_as):
    response = grant(api_as(demo.mgr), user="idev", role="reviewer", team="identity", environment="staging",
                     justification="Help identity.")
    assert response.status_code == 403
    assert codes(response) == ["missing_duty"]


def test_grants_go_only_to_members_of_the_team(demo, api_as):
    response = grant(api_as(demo.mgr), user="idev", role="reviewer", team="payments", environment="staging",
                     justification="Borrowed from identity.")
    assert response.status_code == 403
    assert codes(response) == ["not_team_member"]


def test_every_reason_that_applies_is_given(demo, api_as):
    response = grant(api_as(demo.dev), user="dev", role="reviewer", team="payments", environment="staging",
                     justification="Me, myself.")
    assert response.status_code == 403
    assert sorted(codes(response)) == ["missing_duty", "self_grant"]


def test_a_conflicting_production_grant_is_refused_naming_the_conflict(demo, api_as):
    developer_grant = grant_of(demo.dev, "developer", demo.production)
    response = grant(api_as(demo.mgr), user="dev", role="operations", team="payments", environment="production",
                     justification="Deploy own work.", expires_at=in_days(30))
    assert response.status_code == 403
    assert codes(response) == ["sod_conflict"]
    assert f"grant #{developer_grant.pk}" in response.json()["reasons"][0]["message"]


def test_the_same_duties_outside_production_do_not_conflict(demo, api_as):
    response = grant(api_as(demo.mgr), user="dev", role="operations", team="payments", environment="staging",
                     justification="Deploys to staging.")
    assert response.status_code == 201


def test_an_approved_sod_exception_lets_the_conflicting_grant_through(demo, api_as):
    exception = services.sod_exception_request(
        actor=demo.mgr, user=demo.dev, duty_a="submit", duty_b="deploy", environment=demo.production,
        justification="Sole engineer during the freeze handover.", expires_at=timezone.now() + timedelta(days=14),
    )
    services.sod_exception_approve(actor=demo.sec, exception=exception)
    response = grant(api_as(demo.mgr), user="dev", role="operations", team="payments", environment="production",
                     justification="Handover week.", expires_at=in_days(14))
    assert response.status_code == 201
    assert response.json()["sod_exception"] == exception.pk
    assert response.json()["status"] == "pending"


def test_granting_what_is_already_held_is_a_field_error(demo, api_as):
    response = grant(api_as(demo.mgr), user="dev", role="developer", team="payments", environment="staging",
                     justification="Again.")
    assert response.status_code == 400
    assert list(response.json()) == ["role"]


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"justification": "   "}, "justification", "A justification is required"),
        ({"justification": None}, "justification", "may not be null"),
        ({"environment": "production", "expires_at": None}, "expires_at", "needs an expiry"),
        ({"environment": "production", "expires_at": in_days(91)}, "expires_at", "at most 90 days"),
        ({"environment": "production", "expires_at": in_days(-1)}, "expires_at", "in the future"),
        ({"expires_at": "next tuesday"}, "expires_at", "Datetime has wrong format"),
        ({"environment": None}, "environment", "for one environment"),
        ({"role": "manager"}, "environment", "not environment-scoped"),
        ({"user": "nobody"}, "user", "No user is named nobody"),
        ({"user": 7}, "user", "Give the name as a string"),
        ({"user": "dev\x002"}, "user", "Give the name as a string"),
        ({"role": "janitor"}, "role", "No role has the slug janitor"),
        ({"team": "marketing"}, "team", "No team has the slug marketing"),
        ({"environment": "moon"}, "environment", "No environment has the slug moon"),
        ({"justification": "x\x00y"}, "justification", "Null characters are not allowed"),
    ],
)
def test_invalid_input_is_a_field_error(demo, api_as, nothing_written, body, field, message):
    payload = {"user": "dev2", "role": "reviewer", "team": "payments", "environment": "staging",
               "justification": "Reviews payments."} | body
    client = api_as(demo.mgr)
    with nothing_written():
        response = grant(client, **payload)
    assert response.status_code == 400
    assert field in response.json()
    assert any(message in text for text in response.json()[field]), response.json()


@pytest.mark.parametrize("missing", ["user", "role", "team", "justification"])
def test_required_fields(demo, api_as, missing):
    payload = {"user": "dev2", "role": "reviewer", "team": "payments", "environment": "staging",
               "justification": "Reviews payments."}
    del payload[missing]
    response = grant(api_as(demo.mgr), **payload)
    assert response.status_code == 400
    assert response.json() == {missing: ["This field is required."]}
