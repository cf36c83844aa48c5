"""G5: revocation and expiry take effect at once, for permission checks and for guardian."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.models import AuditEvent
from governance import duties, services
from core.errors import Denied, InvalidState
from governance.models import RoleAssignment
from governance.selectors import has_duty

Status = RoleAssignment.Status
DEPLOY = duties.permission(duties.DEPLOY)
SUBMIT = duties.permission(duties.SUBMIT)


def ops_on_production(demo):
    return RoleAssignment.objects.get(user=demo.ops, role__slug="operations", environment=demo.production)


# --- revocation -------------------------------------------------------------------------------


def test_revoking_removes_the_guardian_permission_at_once(demo, now, refetch):
    assert refetch(demo.ops).has_perm(DEPLOY, demo.production)

    revoked = services.role_assignment_revoke(
        actor=demo.mgr, assignment=ops_on_production(demo), reason="Moved to the identity team", at=now
    )

    assert revoked.status == Status.REVOKED
    assert (revoked.ended_by, revoked.ended_at, revoked.end_reason) == (demo.mgr, now, "Moved to the identity team")
    ops = refetch(demo.ops)
    assert not ops.has_perm(DEPLOY, demo.production)
    assert ops.has_perm(DEPLOY, demo.staging), "only the revoked grant's permission goes"
    assert not has_duty(ops, duties.DEPLOY, environment=demo.production, at=now)


def test_the_permission_goes_in_the_revoking_transaction_and_comes_back_with_its_rollback(demo, now, refetch):
    class CallerFailed(Exception):
        pass

    with pytest.raises(CallerFailed), transaction.atomic():
        services.role_assignment_revoke(
            actor=demo.sec, assignment=ops_on_production(demo), reason="Suspected credential leak", at=now
        )
        assert not refetch(demo.ops).has_perm(DEPLOY, demo.production), "no waiting for commit or a task"
        raise CallerFailed

    assert ops_on_production(demo).status == Status.ACTIVE
    assert refetch(demo.ops).has_perm(DEPLOY, demo.production)


def test_revoking_an_every_environment_grant_clears_every_environment(demo, now, refetch):
    security = RoleAssignment.objects.get(user=demo.sec, role__slug="security")
    security_approve = duties.permission(duties.SECURITY_APPROVE)
    assert all(refetch(demo.sec).has_perm(security_approve, env) for env in (demo.development, demo.production))

    services.role_assignment_revoke(actor=demo.mgr, assignment=security, reason="Left the company", at=now)

    sec = refetch(demo.sec)
    assert not any(sec.has_perm(security_approve, env) for env in (demo.development, demo.staging, demo.production))
    assert not sec.has_perm(duties.permission(duties.VIEW_AUDIT))


def test_revoking_a_team_duty_clears_the_team_permission(demo, now, refetch):
    manager = RoleAssignment.objects.get(user=demo.mgr, role__slug="manager")

    services.role_assignment_revoke(actor=demo.sec, assignment=manager, reason="Stepped down", at=now)

    assert not refetch(demo.mgr).has_perm(duties.permission(duties.MANAGE_ROLES), demo.payments)


def test_grantees_may_give_up_their_own_grant(demo, now):
    revoked = services.role_assignment_revoke(
        actor=demo.ops, assignment=ops_on_production(demo), reason="No longer on call", at=now
    )

    assert revoked.ended_by == demo.ops


def test_a_pending_grant_may_be_revoked(demo, now, grant):
    pending = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)

    assert services.role_assignment_revoke(
        actor=demo.mgr, assignment=pending, reason="Asked by mistake", at=now
    ).status == Status.REVOKED


@pytest.mark.parametrize("actor", ["rev", "dev", "auditor", "idev"])
def test_revoking_someone_elses_grant_needs_manage_roles_or_security(demo, now, nothing_written, actor):
    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_revoke(
            actor=getattr(demo, actor), assignment=ops_on_production(demo), reason="I think so", at=now
        )

    assert refused.value.codes == ["missing_duty"]


@pytest.mark.parametrize("reason", ["", "   "])
def test_revocation_needs_a_reason(demo, now, nothing_written, reason):
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        services.role_assignment_revoke(actor=demo.mgr, assignment=ops_on_production(demo), reason=reason, at=now)

    assert set(invalid.value.message_dict) == {"reason"}


def test_a_grant_is_revoked_once(demo, now, nothing_written):
    services.role_assignment_revoke(actor=demo.mgr, assignment=ops_on_production(demo), reason="Rota change", at=now)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        services.role_assignment_revoke(actor=demo.sec, assignment=ops_on_production(demo), reason="Again", at=now)

    assert refused.value.codes == ["invalid_state"]


def test_leaving_the_team_revokes_every_grant_held_in_it(demo, now, grant, refetch):
    pending = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)
    membership = demo.dev2.memberships.get(team=demo.payments)

    services.membership_remove(actor=demo.mgr, membership=membership)

    left_behind = RoleAssignment.objects.filter(user=demo.dev2, status__in=[Status.ACTIVE, Status.PENDING])
    assert not left_behind.exists()
    assert RoleAssignment.objects.get(pk=pending.pk).end_reason == "left team payments"
    dev2 = refetch(demo.dev2)
    assert not any(dev2.has_perm(SUBMIT, env) for env in (demo.development, demo.staging, demo.production))


# --- expiry -----------------------------------------------------------------------------------


def test_has_duty_ends_the_instant_the_grant_expires_before_any_task_runs(demo, refetch):
    grant = ops_on_production(demo)
    expiry = grant.expires_at

    assert has_duty(demo.ops, duties.DEPLOY, environment=demo.production, at=expiry - timedelta(microseconds=1))
    assert not has_duty(demo.ops, duties.DEPLOY, environment=demo.production, at=expiry)
    assert not has_duty(demo.ops, duties.DEPLOY, environment=demo.production, at=expiry + timedelta(days=1))
    # The expiry task has not run: the assignment is still marked active and guardian still holds
    # the row. Checks read has_duty, which is why the lapse counts at once (RULES.md G5).
    assert RoleAssignment.objects.get(pk=grant.pk).status == Status.ACTIVE
    assert refetch(demo.ops).has_perm(DEPLOY, demo.production)

    assert services.role_assignments_expire_due(at=expiry) >= 1

    assert RoleAssignment.objects.get(pk=grant.pk).status == Status.EXPIRED
    assert not refetch(demo.ops).has_perm(DEPLOY, demo.production)


def test_an_expired_grant_no_longer_lets_its_holder_act(demo, grant):
    manager_lapses_at = RoleAssignment.objects.get(user=demo.mgr, role__slug="manager").expires_at

    with pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.dev2, "reviewer", demo.development, at=manager_lapses_at)

    assert refused.value.codes == ["missing_duty"]


def test_the_expiry_task_expires_what_is_due_once(demo, now, grant, refetch):
    due_tomorrow = grant(demo.mgr, demo.dev2, "operations", demo.development, days=1)
    pending_due_tomorrow = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=1)
    due_next_week = grant(demo.mgr, demo.dev2, "reviewer", demo.development, days=7)
    events_before = AuditEvent.objects.count()
    two_days_later = now + timedelta(days=2)

    assert services.role_assignments_expire_due(at=two_days_later) == 2

    expired = RoleAssignment.objects.filter(pk__in=[due_tomorrow.pk, pending_due_tomorrow.pk])
    assert {a.status for a in expired} == {Status.EXPIRED}
    assert {(a.ended_at, a.end_reason, a.ended_by_id) for a in expired} == {(two_days_later, "expired", None)}
    assert RoleAssignment.objects.get(pk=due_next_week.pk).status == Status.ACTIVE
    assert not refetch(demo.dev2).has_perm(DEPLOY, demo.development)
    assert refetch(demo.dev2).has_perm(duties.permission(duties.APPROVE), demo.development)

    events = AuditEvent.objects.filter(sequence__gt=events_before)
    assert sorted((e.action, e.target_id, e.actor_id, e.actor_username) for e in events) == sorted([
        ("role.expired", str(due_tomorrow.pk), None, ""),
        ("role.expired", str(pending_due_tomorrow.pk), None, ""),
    ])

    assert services.role_assignments_expire_due(at=two_days_later) == 0
    assert services.role_assignments_expire_due(at=two_days_later + timedelta(hours=1)) == 0
    assert AuditEvent.objects.filter(sequence__gt=events_before).count() == 2


def test_the_expiry_task_leaves_grants_without_expiry_alone(demo, now):
    far_future = now + timedelta(days=3650)
    never_expiring = set(RoleAssignment.objects.filter(expires_at__isnull=True).values_list("pk", flat=True))
    assert never_expiring

    services.role_assignments_expire_due(at=far_future)

    assert set(
        RoleAssignment.objects.filter(pk__in=never_expiring, status=Status.ACTIVE).values_list("pk", flat=True)
    ) == never_expiring


def test_an_expired_grant_cannot_be_revoked_any_more(demo, nothing_written):
    grant = ops_on_production(demo)
    services.role_assignments_expire_due(at=grant.expires_at)

    with nothing_written(), pytest.raises(InvalidState):
        services.role_assignment_revoke(actor=demo.admin, assignment=grant, reason="Tidy up", at=grant.expires_at)
