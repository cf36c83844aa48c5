"""Issue 14 class 9b, C10: the author's "emergency" label no longer lowers the bar on its own. An
emergency states why it cannot wait; its reduced approval count holds only when an on-call reviewer
of the team or a security_approve holder is among the approvers; in production it keeps at least
one independent approval whatever the policy says."""
import pytest
from django.core.exceptions import ValidationError

from releases import services
from releases.models import ApprovalPolicy, ChangeRequest
from tests.api_releases.shortcuts import CHANGES, change_url
from tests.releases.stories import draft, events_for, pending_in_production

S = ChangeRequest.State


def test_an_emergency_states_why_it_cannot_wait(demo, now, nothing_written):
    with nothing_written(), pytest.raises(ValidationError) as refused:
        draft(demo, now, change_type="emergency", emergency_reason="  ")

    assert refused.value.message_dict == {"emergency_reason": ["Say why this change cannot wait for the normal review."]}


def test_the_reason_is_on_the_record(demo, now):
    cr = draft(demo, now, change_type="emergency", emergency_reason="Checkout returns 500 for every card.")

    assert cr.emergency_reason == "Checkout returns 500 for every card."
    assert events_for(cr)[0].data["emergency_reason"] == "Checkout returns 500 for every card."


def test_the_api_asks_for_the_reason_and_keeps_it(demo, api_as):
    client = api_as(demo.dev)
    body = {"title": "Hotfix", "team": "payments", "environment": "staging", "artifact": "payments-api:9.1",
            "change_type": "emergency"}

    missing = client.post(CHANGES, body, format="json")
    created = client.post(CHANGES, {**body, "emergency_reason": "Refunds fail."}, format="json")
    blanked = client.patch(change_url(created.json()["id"]), {"emergency_reason": ""}, format="json")

    assert (missing.status_code, list(missing.json())) == (400, ["emergency_reason"])
    assert created.status_code == 201 and created.json()["emergency_reason"] == "Refunds fail."
    assert (blanked.status_code, list(blanked.json())) == (400, ["emergency_reason"])


def test_one_approval_of_an_emergency_counts_only_when_on_call_or_security_gives_it(demo, now):
    """Production asks two approvals of a normal change and one of an emergency: rev alone is not
    enough; rev on call is; so is security."""
    plain = pending_in_production(demo, now, change_type="emergency")
    plain = services.change_request_approve(actor=demo.rev, change_request=plain, via="portal", at=now)
    assert plain.state == S.PENDING
    assert services.change_request_approve(actor=demo.rev2, change_request=plain, via="portal", at=now).state \
        == S.APPROVED, "two approvals are enough without confirmation"

    demo.payments.on_call_reviewers.add(demo.rev)
    on_call = pending_in_production(demo, now, change_type="emergency")
    on_call = services.change_request_approve(actor=demo.rev, change_request=on_call, via="portal", at=now)
    assert on_call.state == S.APPROVED
    assert [(a.reviewer, a.is_on_call) for a in on_call.approvals.all()] == [(demo.rev, True)]
    assert events_for(on_call)[-1].data["on_call"] is True

    security = pending_in_production(demo, now, change_type="emergency")
    assert services.change_request_approve(actor=demo.sec, change_request=security, via="portal", at=now).state \
        == S.APPROVED


def test_production_keeps_one_independent_approval_of_an_emergency(demo, now):
    # Below the configuration floor (control_floor refuses it at the control door): only data written
    # around the services, or older than the floor, holds such a policy; the engine's floor still stands.
    ApprovalPolicy.objects.filter(environment=demo.production).update(emergency_min_approvals=0)

    cr = pending_in_production(demo, now, change_type="emergency")

    assert cr.state == S.PENDING, "K4: no policy lets an emergency reach production unreviewed"
    cr = services.change_request_approve(actor=demo.sec, change_request=cr, via="portal", at=now)
    assert cr.state == S.APPROVED
