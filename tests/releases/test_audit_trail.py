"""L1 for releases: every service call that changes something writes exactly one audit event in
its transaction, saying which state the change left and which it reached; the grant whose duty was
exercised records its use (A2)."""
from collections.abc import Callable
from datetime import timedelta
from typing import NamedTuple

import pytest

from audit.chain import verify
from audit.models import AuditEvent
from governance.models import RoleAssignment
from releases import services
from releases.models import ChangeRequest
from tests.releases.stories import (
    approved_in_production,
    approved_in_staging,
    deploy,
    draft,
    events_for,
    new_artifact,
    pending,
    pending_in_production,
)

LATER = timedelta(hours=1)


def grant_of(demo, username, role, environment):
    return RoleAssignment.objects.get(
        user=getattr(demo, username), role__slug=role, environment=environment, status=RoleAssignment.Status.ACTIVE
    )


class Step(NamedTuple):
    """A service call to observe at ``at``, and what its audit event should say. ``grant`` is the
    (user, role, environment) whose duty the call exercises, None when it exercises none."""

    call: Callable
    action: str
    actor: str
    from_state: str
    to_state: str
    grant: tuple | None


# Each story prepares a change at ``now`` and returns the step to observe an hour later.


def create(demo, now):
    return Step(lambda at: draft(demo, at, environment=demo.staging),
                "change_request.created", "dev", "", "draft", ("dev", "developer", demo.staging))


def submit_for_review(demo, now):
    cr = draft(demo, now, environment=demo.production)
    return Step(lambda at: services.change_request_submit(actor=demo.dev, change_request=cr, at=at),
                "change_request.submitted", "dev", "draft", "pending", ("dev", "developer", demo.production))


def submit_auto_approved(demo, now):
    cr = draft(demo, now, environment=demo.staging, change_type="standard", risk="low")
    return Step(lambda at: services.change_request_submit(actor=demo.dev, change_request=cr, at=at),
                "change_request.submitted", "dev", "draft", "approved", ("dev", "developer", demo.staging))


def edit(demo, now):
    cr = draft(demo, now)
    changes = {"title": "Retry once"}
    return Step(lambda at: services.change_request_update(actor=demo.dev, change_request=cr, changes=changes, at=at),
                "change_request.updated", "dev", "draft", "draft", ("dev", "developer", demo.staging))


def new_revision(demo, now):
    cr = approved_in_staging(demo, now)
    changes = {"artifact": new_artifact()}
    return Step(lambda at: services.change_request_update(actor=demo.dev, change_request=cr, changes=changes, at=at),
                "change_request.revised", "dev", "approved", "pending", ("dev", "developer", demo.staging))


def first_sign_off(demo, now):
    cr = pending_in_production(demo, now)
    return Step(lambda at: services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=at),
                "change_request.approval_recorded", "rev", "pending", "pending", ("rev", "reviewer", demo.production))


def deciding_approval(demo, now):
    cr = pending(demo, now, environment=demo.staging)
    return Step(lambda at: services.change_request_approve(actor=demo.rev, change_request=cr, at=at),
                "change_request.approved", "rev", "pending", "approved", ("rev", "reviewer", demo.staging))


def security_approval(demo, now):
    cr = pending(demo, now, environment=demo.staging)
    return Step(lambda at: services.change_request_approve(actor=demo.sec, change_request=cr, at=at),
                "change_request.approved", "sec", "pending", "approved", ("sec", "security", None))


def reject(demo, now):
    cr = pending(demo, now, environment=demo.staging)
    return Step(lambda at: services.change_request_reject(actor=demo.rev2, change_request=cr, comment="No.", at=at),
                "change_request.rejected", "rev2", "pending", "rejected", ("rev2", "reviewer", demo.staging))


def cancel(demo, now):
    cr = approved_in_staging(demo, now)
    return Step(lambda at: services.change_request_cancel(actor=demo.dev, change_request=cr, reason="Old.", at=at),
                "change_request.cancelled", "dev", "approved", "cancelled", None)


def start_deployment(demo, now):
    cr = approved_in_production(demo, now)
    return Step(lambda at: services.deployment_start(actor=demo.ops, change_request=cr, at=at),
                "deployment.started", "ops", "approved", "deploying", ("ops", "operations", demo.production))


def finish_succeeded(demo, now):
    deployment = services.deployment_start(actor=demo.ops, change_request=approved_in_staging(demo, now), at=now)
    return Step(lambda at: services.deployment_finish(actor=demo.ops, deployment=deployment, outcome="succeeded",
                                                      at=at),
                "deployment.succeeded", "ops", "deploying", "deployed", None)


def finish_failed(demo, now):
    deployment = services.deployment_start(actor=demo.ops, change_request=approved_in_staging(demo, now), at=now)
    return Step(lambda at: services.deployment_finish(actor=demo.ops, deployment=deployment, outcome="failed", at=at),
                "deployment.failed", "ops", "deploying", "failed", None)


def rollback(demo, now):
    deployment = deploy(demo, approved_in_staging(demo, now), now)
    return Step(lambda at: services.deployment_rollback(actor=demo.ops, deployment=deployment, reason="Bad.", at=at),
                "deployment.rolled_back", "ops", "deployed", "rolled_back", ("ops", "operations", demo.staging))


def post_implementation_review(demo, now):
    cr = approved_in_production(demo, now, change_type="emergency", reviewers=(demo.sec,))
    deploy(demo, cr, now)
    return Step(lambda at: services.change_request_review_pir(actor=demo.rev, change_request=cr, notes="Fine.", at=at),
                "change_request.pir_completed", "rev", "deployed", "deployed", ("rev", "reviewer", demo.production))


STORIES = [
    create, submit_for_review, submit_auto_approved, edit, new_revision, first_sign_off, deciding_approval,
    security_approval, reject, cancel, start_deployment, finish_succeeded, finish_failed, rollback,
    post_implementation_review,
]


@pytest.mark.parametrize("story", STORIES, ids=[s.__name__ for s in STORIES])
def test_each_service_call_writes_one_event_naming_the_transition(demo, now, story):
    step = story(demo, now)
    before = AuditEvent.objects.order_by("sequence").last().sequence

    result = step.call(now + LATER)

    # Security alerts the action raised (off-hours, rubber stamp) are events of their own.
    [event] = AuditEvent.objects.filter(sequence__gt=before).exclude(action="alert.raised")
    cr = result if isinstance(result, ChangeRequest) else result.change_request
    cr.refresh_from_db()
    assert event.action == step.action
    assert (event.actor, event.actor_username) == (getattr(demo, step.actor), step.actor)
    assert (event.target_type, event.target_id) == ("releases.changerequest", str(cr.pk))
    assert (event.environment, event.team) == (cr.environment.slug, "payments")
    assert (event.data["from_state"], event.data["to_state"]) == (step.from_state, step.to_state)
    assert cr.state == step.to_state
    assert (event.data["change_request"], event.data["revision"], event.data["artifact"]) == (
        cr.pk, cr.revision, cr.artifact
    )
    assert event.created_at == now + LATER
    history = list(cr.history.order_by("-history_id").values_list("state", flat=True)[:1])
    assert history == [step.to_state], "simple-history holds the same state as the event"


# Cancelling and reporting an outcome exercise no duty: the author or a manager cancels, the
# deployer reports what happened.
@pytest.mark.parametrize(
    "story", [s for s in STORIES if s not in (cancel, finish_succeeded, finish_failed)], ids=lambda s: s.__name__,
)
def test_the_grant_whose_duty_was_exercised_records_its_use(demo, now, story):
    step = story(demo, now)
    username, role, environment = step.grant
    grant = grant_of(demo, username, role, environment)
    others = dict(RoleAssignment.objects.exclude(pk=grant.pk).values_list("pk", "last_used_at"))

    step.call(now + LATER)

    grant.refresh_from_db()
    assert grant.last_used_at == now + LATER
    assert dict(RoleAssignment.objects.exclude(pk=grant.pk).values_list("pk", "last_used_at")) == others


def test_cancelling_and_reporting_exercise_no_duty(demo, now):
    steps = [story(demo, now) for story in (cancel, finish_succeeded, finish_failed)]
    assert [step.grant for step in steps] == [None, None, None]
    used = dict(RoleAssignment.objects.values_list("pk", "last_used_at"))

    for step in steps:
        step.call(now + LATER)

    assert dict(RoleAssignment.objects.values_list("pk", "last_used_at")) == used


def test_a_failed_sign_off_is_recorded_without_a_state_change(demo, now):
    cr = pending_in_production(demo, now)

    services.signoff_failed(actor=demo.rev, change_request=cr, at=now)

    [*_, event] = events_for(cr)
    assert (event.action, event.actor, event.data["from_state"], event.data["to_state"]) == (
        "change_request.signoff_failed", demo.rev, "pending", "pending"
    )


def test_a_whole_life_reads_as_a_chain_of_transitions_and_the_log_verifies(demo, now):
    cr = approved_in_production(demo, now, change_type="emergency", reviewers=(demo.sec,))
    deployment = deploy(demo, cr, now)
    services.deployment_rollback(actor=demo.ops, deployment=deployment, reason="Latency.", at=now)
    services.change_request_review_pir(actor=demo.rev, change_request=cr, notes="Rolled back in time.", at=now)

    transitions = [(e.action, e.data["from_state"], e.data["to_state"]) for e in events_for(cr)]
    assert transitions == [
        ("change_request.created", "", "draft"),
        ("change_request.submitted", "draft", "pending"),
        ("change_request.approved", "pending", "approved"),
        ("deployment.started", "approved", "deploying"),
        ("deployment.succeeded", "deploying", "deployed"),
        ("deployment.rolled_back", "deployed", "rolled_back"),
        ("change_request.pir_completed", "rolled_back", "rolled_back"),
    ]
    assert verify() == (AuditEvent.objects.count(), None)
