"""L1 for the governance services: each call writes exactly one audit event, in its transaction,
naming the action, the actor (and a username snapshot), the target, the team and the environment;
and the hash chain still verifies afterwards."""
from datetime import timedelta

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from governance import duties, services
from core.errors import Denied
from governance.models import RoleAssignment


@pytest.fixture
def events_of():
    """``with events_of() as written:`` collects the audit events written inside the block."""

    class Recorder:
        def __enter__(self):
            self.since = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
            return self

        def __exit__(self, *exc):
            self.events = list(AuditEvent.objects.filter(sequence__gt=self.since).order_by("sequence"))

        @property
        def only(self) -> AuditEvent:
            assert len(self.events) == 1, [e.action for e in self.events]
            return self.events[0]

    return Recorder


def assert_describes(event, *, action, actor, target, team, environment, at):
    assert event.action == action
    assert event.actor_id == (actor.pk if actor else None)
    assert event.actor_username == (actor.username if actor else "")
    assert (event.target_type, event.target_id) == (target._meta.label_lower, str(target.pk))
    assert (event.team, event.environment) == (team, environment)
    assert event.created_at == at


def assert_chain_verifies():
    call_command("audit_verify", stdout=open("/dev/null", "w"))


def test_a_grant_active_at_once_is_recorded_as_granted(demo, now, grant, events_of):
    with events_of() as written:
        assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.staging)

    event = written.only
    assert_describes(event, action="role.granted", actor=demo.mgr, target=assignment, team="payments",
                     environment="staging", at=now)
    assert event.data["user"] == "dev2"
    assert event.data["role"] == "reviewer"
    assert event.data["status"] == "active"
    assert event.data["justification"] == "dev2 covers reviewer this quarter"
    assert event.data["privileged"] is False
    assert_chain_verifies()


def test_a_privileged_request_is_recorded_as_requested(demo, now, grant, events_of):
    with events_of() as written:
        assignment = grant(demo.mgr, demo.dev2, "manager", days=30)

    event = written.only
    assert_describes(event, action="role.grant_requested", actor=demo.mgr, target=assignment, team="payments",
                     environment="", at=now)
    assert (event.data["status"], event.data["privileged"]) == ("pending", True)
    assert event.data["expires_at"].startswith((now + timedelta(days=30)).date().isoformat())
    assert_chain_verifies()


def test_approval_is_recorded(demo, now, grant, events_of):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)

    with events_of() as written:
        services.role_assignment_approve(actor=demo.sec, assignment=assignment, at=now + timedelta(minutes=5))

    event = written.only
    assert_describes(event, action="role.grant_approved", actor=demo.sec, target=assignment, team="payments",
                     environment="production", at=now + timedelta(minutes=5))
    assert event.data["status"] == "active"
    assert_chain_verifies()


def test_rejection_is_recorded_with_its_reason(demo, now, grant, events_of):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)

    with events_of() as written:
        services.role_assignment_reject(actor=demo.sec, assignment=assignment, reason="Not on the rota", at=now)

    event = written.only
    assert_describes(event, action="role.grant_rejected", actor=demo.sec, target=assignment, team="payments",
                     environment="production", at=now)
    assert event.data["reason"] == "Not on the rota"
    assert_chain_verifies()


def test_revocation_is_recorded_with_its_reason(demo, now, events_of):
    assignment = RoleAssignment.objects.get(user=demo.ops, role__slug="operations", environment=demo.production)

    with events_of() as written:
        services.role_assignment_revoke(actor=demo.mgr, assignment=assignment, reason="Left the rota", at=now)

    event = written.only
    assert_describes(event, action="role.revoked", actor=demo.mgr, target=assignment, team="payments",
                     environment="production", at=now)
    assert (event.data["reason"], event.data["status"]) == ("Left the rota", "revoked")
    assert_chain_verifies()


def test_expiry_is_recorded_once_per_grant_by_no_one(demo, now, grant, events_of):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.development, days=1)

    with events_of() as written:
        services.role_assignments_expire_due(at=now + timedelta(days=1))

    event = written.only
    assert_describes(event, action="role.expired", actor=None, target=assignment, team="payments",
                     environment="development", at=now + timedelta(days=1))
    assert_chain_verifies()


def test_sod_exception_lifecycle_is_recorded(demo, now, events_of):
    with events_of() as requested:
        exception = services.sod_exception_request(
            actor=demo.mgr, user=demo.ops, duty_a=duties.SUBMIT, duty_b=duties.DEPLOY, environment=demo.production,
            justification="Hotfix cover", expires_at=now + timedelta(days=7), at=now,
        )
    with events_of() as approved:
        services.sod_exception_approve(actor=demo.sec, exception=exception, at=now)
    with events_of() as revoked:
        services.sod_exception_revoke(actor=demo.sec, exception=exception, reason="Cover over", at=now)

    common = {"target": exception, "team": "", "environment": "production", "at": now}
    assert_describes(requested.only, action="sod_exception.requested", actor=demo.mgr, **common)
    assert_describes(approved.only, action="sod_exception.approved", actor=demo.sec, **common)
    assert_describes(revoked.only, action="sod_exception.revoked", actor=demo.sec, **common)
    assert requested.only.data["duties"] == ["submit", "deploy"]
    assert requested.only.data["justification"] == "Hotfix cover"
    assert revoked.only.data["reason"] == "Cover over"
    assert_chain_verifies()


def test_a_grant_under_an_exception_names_it(demo, now, grant, events_of):
    exception = services.sod_exception_request(
        actor=demo.mgr, user=demo.ops, duty_a=duties.SUBMIT, duty_b=duties.DEPLOY, environment=demo.production,
        justification="Hotfix cover", expires_at=now + timedelta(days=7), at=now,
    )
    services.sod_exception_approve(actor=demo.sec, exception=exception, at=now)

    with events_of() as written:
        grant(demo.mgr, demo.ops, "developer", demo.production, days=7)

    assert written.only.data["sod_exception"] == exception.pk


def test_the_username_snapshot_outlives_a_rename(demo, grant, events_of):
    with events_of() as written:
        grant(demo.mgr, demo.dev2, "reviewer", demo.staging)
    demo.mgr.username = "mgr-renamed"
    demo.mgr.save(update_fields=["username"])

    assert AuditEvent.objects.get(pk=written.only.pk).actor_username == "mgr"
    assert_chain_verifies()


def test_a_refused_call_records_nothing(demo, grant, events_of):
    with events_of() as written, pytest.raises(Denied):
        grant(demo.mgr, demo.dev, "operations", demo.production, days=7)

    assert written.events == []


def test_a_whole_story_leaves_a_verifiable_chain(demo, now, grant):
    first = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)
    services.role_assignment_approve(actor=demo.sec, assignment=first, at=now)
    second = grant(demo.mgr, demo.rev2, "operations", demo.development, days=2)
    services.role_assignment_revoke(actor=demo.dev2, assignment=first, reason="Rota ended", at=now)
    services.role_assignments_expire_due(at=now + timedelta(days=3))

    assert RoleAssignment.objects.get(pk=second.pk).status == RoleAssignment.Status.EXPIRED
    assert_chain_verifies()
