"""The one door for control changes (RULES.md K2, K3): strengthening applies at once, weakening waits
for a second person, and each step is on the chain with the values before and after."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from governance.controls.services import (
    control_change,
    control_change_approve,
    control_change_reject,
    control_changes_expire_due,
    pending_for,
)
from core.errors import Denied, InvalidState
from governance.models import ControlChange
from releases.models import ApprovalPolicy
from tests.controls.conftest import last_event

POLICY = "releases.approvalpolicy"


def production_policy(demo) -> ApprovalPolicy:
    return ApprovalPolicy.objects.get(environment=demo.production)


def test_a_stronger_policy_applies_at_once_with_its_values_on_the_chain(demo, now):
    change = control_change(actor=demo.sec, kind=POLICY, target=production_policy(demo),
                            values={"min_approvals": 3}, at=now)

    assert change.status == ControlChange.Status.APPLIED
    assert production_policy(demo).min_approvals == 3
    event = last_event("control.changed")
    assert (event.actor, event.environment) == (demo.sec, "production")
    assert (event.target_type, event.target_id) == ("releases.approvalpolicy", change.target_id)
    assert event.data["control_change"] == change.pk
    assert event.data["changed"] == ["min_approvals"]
    assert (event.data["before"]["min_approvals"], event.data["after"]["min_approvals"]) == (2, 3)
    assert event.data["weakening"] == []


def test_a_weaker_policy_waits_and_the_second_person_applies_it(demo, now, sec2):
    proposal = control_change(actor=demo.sec, kind=POLICY, target=production_policy(demo),
                              values={"min_approvals": 1, "require_interactive_signoff": False}, at=now)
    held = production_policy(demo)

    applied = control_change_approve(actor=sec2, change=proposal, comment="Agreed for the migration week",
                                     at=now + timedelta(hours=1))

    assert proposal.status == ControlChange.Status.PENDING
    assert (held.min_approvals, held.require_interactive_signoff) == (2, True)
    assert [w["field"] for w in proposal.weakening] == ["min_approvals", "require_interactive_signoff"]
    assert proposal.expires_at == now + timedelta(hours=72)
    assert (applied.status, applied.decided_by, applied.applied_at) == ("applied", sec2, now + timedelta(hours=1))
    assert (production_policy(demo).min_approvals, production_policy(demo).require_interactive_signoff) == (1, False)
    proposed, approved = last_event("control.proposed"), last_event("control.approved")
    assert proposed.actor == demo.sec and approved.actor == sec2
    assert approved.data["proposed_by"] == "sec"
    assert approved.data["before"]["min_approvals"] == 2 and approved.data["after"]["min_approvals"] == 1


def test_the_proposer_is_never_the_second_person(demo, now, nothing_written):
    proposal = control_change(actor=demo.sec, kind=POLICY, target=production_policy(demo),
                              values={"min_approvals": 1}, at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        control_change_approve(actor=demo.sec, change=proposal, at=now)

    assert refused.value.codes == ["four_eyes_control"]


def test_an_expired_proposal_cannot_be_approved_and_the_task_marks_it(demo, now, sec2):
    proposal = control_change(actor=demo.sec, kind=POLICY, target=production_policy(demo),
                              values={"min_approvals": 1}, at=now)
    later = now + timedelta(hours=73)

    with pytest.raises(InvalidState) as refused:
        control_change_approve(actor=sec2, change=proposal, at=later)
    expired = control_changes_expire_due(at=later)

    assert refused.value.codes == ["control_proposal_expired"]
    assert expired == 1
    proposal.refresh_from_db()
    assert proposal.status == ControlChange.Status.EXPIRED
    assert production_policy(demo).min_approvals == 2
    assert last_event("control.expired").data["control_change"] == proposal.pk
    assert control_changes_expire_due(at=later) == 0  # safe to run twice


def test_a_proposal_overtaken_by_another_change_is_not_applied(demo, now, sec2):
    policy = production_policy(demo)
    proposal = control_change(actor=demo.sec, kind=POLICY, target=policy, values={"min_approvals": 1}, at=now)
    control_change_reject(actor=demo.sec, change=proposal, at=now)  # withdrawn, so another may be made
    stronger = control_change(actor=demo.sec, kind=POLICY, target=policy, values={"min_approvals": 4}, at=now)
    ControlChange.objects.filter(pk=proposal.pk).update(status="pending")  # as if it had raced the change

    with pytest.raises(InvalidState) as refused:
        control_change_approve(actor=sec2, change=proposal, at=now)

    assert stronger.status == "applied"
    assert refused.value.codes == ["control_proposal_stale"]
    assert production_policy(demo).min_approvals == 4


def test_one_proposal_at_a_time_per_control(demo, now, nothing_written):
    control_change(actor=demo.sec, kind=POLICY, target=production_policy(demo), values={"min_approvals": 1}, at=now)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        control_change(actor=demo.admin, kind=POLICY, target=production_policy(demo), values={"min_approvals": 3},
                       at=now)

    assert refused.value.codes == ["control_proposal_pending"]


def test_the_proposer_withdraws_and_a_second_person_rejects(demo, now, sec2):
    first = control_change(actor=demo.sec, kind=POLICY, target=production_policy(demo),
                           values={"min_approvals": 1}, at=now)
    withdrawn = control_change_reject(actor=demo.sec, change=first, comment="Wrong environment", at=now)
    second = control_change(actor=demo.sec, kind=POLICY, target=production_policy(demo),
                            values={"approval_ttl_hours": None}, at=now)
    rejected = control_change_reject(actor=sec2, change=second, comment="Approvals must expire", at=now)

    assert (withdrawn.status, rejected.status) == ("withdrawn", "rejected")
    assert last_event("control.withdrawn").actor == demo.sec
    assert last_event("control.rejected").data["comment"] == "Approvals must expire"
    assert production_policy(demo).approval_ttl_hours == 72


def test_an_unchanged_control_records_nothing(demo, now, nothing_written):
    with nothing_written():
        assert control_change(actor=demo.sec, kind=POLICY, target=production_policy(demo),
                              values={"min_approvals": 2}, at=now) is None


def test_a_roles_duties_are_a_set_in_the_record(demo, now, nothing_written):
    """Found by the control property test: duties proposed in another order than stored were
    recorded in that order (the event's "after" was not what the role then held) and a mere
    reordering counted as a change."""
    role = demo.roles["operations"]
    held = sorted(role.duties.values_list("duty", flat=True))
    with nothing_written():
        assert control_change(actor=demo.admin, kind="governance.role", target=role,
                              values={"duties": list(reversed(held))}, at=now) is None

    change = control_change(actor=demo.admin, kind="governance.role", target=role,
                            values={"duties": ["approve", *reversed(held), "approve"]}, at=now)
    assert change.after["duties"] == sorted({"approve", *held})
    control_change_approve(actor=demo.sec, change=change, at=now)
    assert last_event("control.approved").data["after"]["duties"] == sorted(
        role.duties.values_list("duty", flat=True))


def test_bad_values_are_field_errors_and_change_nothing(demo, now, nothing_written):
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        control_change(actor=demo.sec, kind=POLICY, target=production_policy(demo),
                       values={"deploy_weekdays": "8", "deploy_window_start": "09:00"}, at=now)

    assert set(invalid.value.message_dict) == {"deploy_weekdays", "deploy_window_end"}


def test_a_field_that_is_not_a_control_is_refused(demo, now, nothing_written):
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        control_change(actor=demo.sec, kind=POLICY, target=production_policy(demo), values={"id": 9}, at=now)

    assert invalid.value.message_dict == {"id": ["This field cannot be changed."]}


def test_a_command_may_strengthen_but_never_weaken(demo, now, nothing_written):
    applied = control_change(actor=None, kind=POLICY, target=production_policy(demo), values={"min_approvals": 3},
                             source="tests", at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        control_change(actor=None, kind=POLICY, target=production_policy(demo), values={"min_approvals": 2}, at=now)

    assert applied.status == "applied" and applied.proposed_by is None
    assert last_event("control.changed").data["source"] == "tests"
    assert refused.value.codes == ["four_eyes_control"]


def test_waiting_on_you_lists_what_each_person_may_approve(demo, now, sec2):
    proposal = control_change(actor=demo.admin, kind=POLICY, target=production_policy(demo),
                              values={"min_approvals": 1}, at=now)

    assert pending_for(demo.sec, at=now) == [proposal]
    assert pending_for(sec2, at=now) == [proposal]
    assert pending_for(demo.admin, at=now) == []  # the proposer
    assert pending_for(demo.mgr, at=now) == []  # no security for production
