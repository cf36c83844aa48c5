"""E1: stalled approvals remind reviewers (on-call first) past the SLA, managers past twice it."""
from datetime import timedelta

from audit.models import AuditEvent
from releases import escalation
from releases.models import ChangeRequest


def _pending(demo):
    return ChangeRequest.objects.get(state="pending", environment=demo.production)


def test_nothing_before_the_sla(demo):
    cr = _pending(demo)
    assert escalation.escalate_stalled(at=cr.submitted_at + timedelta(minutes=239)) == {"reminded": 0, "escalated": 0}


def test_reminder_goes_to_eligible_reviewers_once(demo):
    cr = _pending(demo)
    at = cr.submitted_at + timedelta(minutes=241)
    assert escalation.escalate_stalled(at=at) == {"reminded": 1, "escalated": 0}
    event = AuditEvent.objects.get(action="change_request.reminded")
    # dev is the author, dev2 a contributor: never asked to review their own change.
    assert set(event.data["to"]) == {"rev", "rev2", "sec"}
    assert escalation.escalate_stalled(at=at + timedelta(minutes=5))["reminded"] == 0


def test_on_call_reviewers_first(demo):
    demo.payments.on_call_reviewers.add(demo.rev2)
    cr = _pending(demo)
    escalation.escalate_stalled(at=cr.submitted_at + timedelta(minutes=241))
    assert AuditEvent.objects.get(action="change_request.reminded").data["to"] == ["rev2"]


def test_twice_the_sla_escalates_to_managers_once(demo):
    cr = _pending(demo)
    at = cr.submitted_at + timedelta(minutes=481)
    assert escalation.escalate_stalled(at=at) == {"reminded": 0, "escalated": 1}
    assert AuditEvent.objects.get(action="change_request.escalated").data["to"] == ["mgr"]
    assert escalation.escalate_stalled(at=at + timedelta(hours=1))["escalated"] == 0
