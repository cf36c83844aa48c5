"""``GET change-requests/{id}/gate/?action=approve|deploy``: the policy's answer for the caller,
with every reason at once, and never a write."""
from datetime import timedelta

import pytest
from django.utils import timezone

from releases import policy, selectors
from tests.api_releases.shortcuts import approved, change_url, pending
from tests.factories import set_control


def gate(client, change, action):
    return client.get(change_url(change, "gate"), {"action": action})


def freeze(demo, environment):
    now = timezone.now()
    set_control(by=demo.sec, control="releases.freezewindow", name="Quarter close", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=6), environments=[environment])


def test_the_gate_gives_every_reason_at_once_and_writes_nothing(demo, api_as, nothing_written):
    change = pending(demo, demo.dev, demo.production)
    freeze(demo, demo.production)
    client = api_as(demo.dev)
    with nothing_written():
        response = gate(client, change, "deploy")
    assert response.status_code == 200
    body = response.json()
    assert body["allowed"] is False and body["action"] == "deploy"
    assert sorted(reason["code"] for reason in body["reasons"]) == [
        "author_cannot_deploy", "freeze_window_active", "missing_duty", "not_approved", "prior_environment_required",
    ]
    assert all(reason["message"] for reason in body["reasons"])
    assert body["requirements"] == {
        "approvals": {"required": 2, "valid": 0, "expired": 0},
        "security_approvals": {"required": 0, "valid": 0},
        "team_reviewer": {"required": True, "present": False},
        "independent_approval": {"required": True, "present": False},
        "standard_template": None,
        "approval_ttl_hours": 72,
        "approvals_met": False,
        "interactive_signoff_required": True,
        "freeze_windows": ["Quarter close"],
        "in_deploy_window": True,
        "prior_environment": {"environment": "staging", "deployed": False},
    }


def test_the_gate_lets_operations_deploy_an_approved_change(demo, api_as, nothing_written):
    change = approved(demo, demo.dev, demo.staging)
    client = api_as(demo.ops)
    with nothing_written():
        response = gate(client, change, "deploy")
    assert response.status_code == 200
    assert response.json()["allowed"] is True and response.json()["reasons"] == []
    assert response.json()["requirements"]["approvals"] == {"required": 1, "valid": 1, "expired": 0}


def test_the_gate_is_the_policy_engine_answer_for_the_caller(demo, api_as):
    change = approved(demo, demo.dev, demo.staging, reviewers=[demo.rev])
    for user in (demo.ops, demo.rev, demo.dev, demo.sec):
        response = gate(api_as(user), change, "deploy")
        context = selectors.policy_context(selectors.change_request_for_decision(change.pk), user)
        assert response.json() == policy.evaluate(context, "deploy", timezone.now()).as_dict()
    rev_reasons = gate(api_as(demo.rev), change, "deploy").json()["reasons"]
    assert [reason["code"] for reason in rev_reasons] == ["missing_duty", "approver_cannot_deploy"]


def test_the_approve_gate_speaks_for_the_api(demo, api_as, nothing_written):
    production = pending(demo, demo.dev, demo.production)
    staging = pending(demo, demo.dev, demo.staging)
    client = api_as(demo.rev)
    with nothing_written():
        refused = gate(client, production, "approve")
        allowed = gate(client, staging, "approve")
    assert [reason["code"] for reason in refused.json()["reasons"]] == ["interactive_signoff_required"]
    assert allowed.json()["allowed"] is True


@pytest.mark.parametrize("query", [{}, {"action": "submit"}, {"action": "reject"}, {"action": "DEPLOY"},
                                   {"action": ""}])
def test_the_gate_knows_two_actions(demo, api_as, nothing_written, query):
    change = approved(demo, demo.dev, demo.staging)
    client = api_as(demo.ops)
    with nothing_written():
        response = client.get(change_url(change, "gate"), query)
    assert response.status_code == 400
    assert list(response.json()) == ["action"]


def test_the_gate_only_reads(demo, api_as):
    change = approved(demo, demo.dev, demo.staging)
    client = api_as(demo.ops)
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)(change_url(change, "gate") + "?action=deploy").status_code == 405
