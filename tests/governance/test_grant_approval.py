"""G4: privileged grants wait for a second person; everything else is active at once."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from governance import duties, services
from core.errors import Denied, InvalidState
from governance.models import RoleAssignment
from governance.selectors import has_duty
from tests.factories import set_control

Status = RoleAssignment.Status


# --- which grants wait ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role_slug, environment, duty",
    [
        ("reviewer", "production", duties.APPROVE),  # a duty on a production-tier environment
        ("security", "staging", duties.SECURITY_APPROVE),  # the security role, wherever
        ("security", None, duties.SECURITY_APPROVE),
        ("manager", None, duties.MANAGE_ROLES),  # the manager role
    ],
)
def test_privileged_grants_start_pending_and_confer_nothing(
    demo, now, grant, refetch, role_slug, environment, duty
):
    where = getattr(demo, environment) if environment else None

    assignment = grant(demo.mgr, demo.dev2, role_slug, where, days=30)

    assert assignment.status == Status.PENDING
    assert assignment.approved_by is None and assignment.approved_at is None
    scope = {"team": demo.payments} if duty in duties.TEAM_DUTIES else {"environment": where or demo.staging}
    assert not has_duty(demo.dev2, duty, at=now, **scope)
    assert not refetch(demo.dev2).has_perm(duties.permission(duty), scope.get("team") or scope["environment"])


@pytest.mark.parametrize(
    "role_slug, environment",
    [("reviewer", "development"), ("reviewer", "staging"), ("operations", "staging")],
)
def test_non_privileged_grants_are_active_at_once(demo, now, grant, role_slug, environment):
    assignment = grant(demo.mgr, demo.dev2, role_slug, getattr(demo, environment) if environment else None)

    assert assignment.status == Status.ACTIVE
    assert assignment.approved_at == now
    assert assignment.approved_by is None


def test_compliance_sees_every_team_so_it_waits_for_a_second_person_and_expires(demo, now, grant, nothing_written):
    """K6: global visibility and export is privileged: four eyes and an expiry."""
    with nothing_written(), pytest.raises(ValidationError) as no_expiry:
        grant(demo.mgr, demo.dev2, "compliance", None)
    assignment = grant(demo.mgr, demo.dev2, "compliance", None, days=30)
    with pytest.raises(Denied) as by_the_requester:
        services.role_assignment_approve(actor=demo.mgr, assignment=assignment, at=now)

    assert "expires_at" in no_expiry.value.message_dict
    assert assignment.status == Status.PENDING
    assert by_the_requester.value.codes == ["four_eyes_grant"]
    assert services.role_assignment_approve(actor=demo.sec, assignment=assignment, at=now).status == Status.ACTIVE


# --- who approves -----------------------------------------------------------------------------


def test_security_approves_a_production_grant_the_manager_requested(demo, now, grant, refetch):
    assignment = grant(demo.mgr, demo.dev2, "security", demo.production, days=30)
    later = now + timedelta(hours=2)

    approved = services.role_assignment_approve(actor=demo.sec, assignment=assignment, at=later)

    assert approved.status == Status.ACTIVE
    assert approved.approved_by == demo.sec
    assert approved.approved_at == later
    assert has_duty(demo.dev2, duties.SECURITY_APPROVE, environment=demo.production, at=later)
    assert refetch(demo.dev2).has_perm(duties.permission(duties.SECURITY_APPROVE), demo.production)


def test_the_manager_approves_a_grant_the_administrator_requested(demo, now, grant, refetch):
    assignment = grant(demo.admin, demo.dev2, "manager", days=30)

    services.role_assignment_approve(actor=demo.mgr, assignment=assignment, at=now)

    assert RoleAssignment.objects.get(pk=assignment.pk).status == Status.ACTIVE
    assert has_duty(demo.dev2, duties.MANAGE_ROLES, team=demo.payments, at=now)
    assert refetch(demo.dev2).has_perm(duties.permission(duties.MANAGE_ROLES), demo.payments)


def test_the_requester_may_not_approve_their_own_request(demo, now, grant, nothing_written):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=demo.mgr, assignment=assignment, at=now)

    assert refused.value.codes == ["four_eyes_grant"]


def test_even_the_administrator_needs_a_second_person(demo, now, grant, nothing_written):
    assignment = grant(demo.admin, demo.dev2, "manager", days=30)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=demo.admin, assignment=assignment, at=now)

    assert refused.value.codes == ["four_eyes_grant"]


def test_the_grantee_may_not_approve_their_own_grant(demo, now, grant, nothing_written):
    assignment = grant(demo.mgr, demo.sec, "reviewer", demo.production, days=30)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=demo.sec, assignment=assignment, at=now)

    assert refused.value.codes == ["four_eyes_grant"]


@pytest.mark.parametrize("actor", ["rev", "dev", "auditor", "ops"])
def test_approving_needs_manage_roles_or_security_approve(demo, now, grant, nothing_written, actor):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=getattr(demo, actor), assignment=assignment, at=now)

    assert refused.value.codes == ["missing_duty"]


def test_a_grantee_without_approving_duties_hears_both_reasons(demo, now, grant, nothing_written):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=demo.dev2, assignment=assignment, at=now)

    assert refused.value.codes == ["four_eyes_grant", "missing_duty"]


def test_a_manager_of_another_team_may_not_approve(demo, now, grant, nothing_written):
    idev_as_identity_manager = grant(demo.admin, demo.idev, "manager", team=demo.identity, days=30)
    services.role_assignment_approve(actor=demo.sec, assignment=idev_as_identity_manager, at=now)
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=demo.idev, assignment=assignment, at=now)

    assert refused.value.codes == ["missing_duty"]


def test_an_approver_whose_own_grant_lapsed_may_not_approve(demo, grant, nothing_written):
    sec_lapses_at = RoleAssignment.objects.get(user=demo.sec, role__slug="security").expires_at
    pending = grant(demo.admin, demo.dev2, "reviewer", demo.production, days=30, at=sec_lapses_at - timedelta(days=1))

    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=demo.sec, assignment=pending, at=sec_lapses_at)

    assert refused.value.codes == ["missing_duty"]


# --- approval re-checks conflicts -------------------------------------------------------------


def test_approval_refuses_a_grant_whose_exception_was_revoked_meanwhile(demo, now, grant, nothing_written):
    exception = services.sod_exception_request(
        actor=demo.mgr, user=demo.ops, duty_a=duties.SUBMIT, duty_b=duties.DEPLOY, environment=demo.production,
        justification="ops patches the hotfix branch this week", expires_at=now + timedelta(days=7), at=now,
    )
    services.sod_exception_approve(actor=demo.sec, exception=exception, at=now)
    assignment = grant(demo.mgr, demo.ops, "developer", demo.production, days=7)
    assert assignment.sod_exception == exception
    services.sod_exception_revoke(actor=demo.sec, exception=exception, reason="Hotfix shipped", at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=demo.sec, assignment=assignment, at=now)

    assert refused.value.codes == ["sod_conflict"]
    assert "operations in production" in refused.value.messages()[0]


def test_approval_applies_a_conflict_rule_added_after_the_request(demo, now, grant, nothing_written):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)
    set_control(by=demo.sec, control="governance.conflictrule", duty_a=duties.SUBMIT, duty_b=duties.APPROVE,
                tier="production", description="Authors do not review production changes.")

    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=demo.sec, assignment=assignment, at=now)

    assert refused.value.codes == ["sod_conflict"]
    assert "developer in production" in refused.value.messages()[0]


def test_approval_reports_a_conflict_together_with_a_missing_duty(demo, now, grant, nothing_written):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)
    set_control(by=demo.sec, control="governance.conflictrule", duty_a=duties.SUBMIT, duty_b=duties.APPROVE)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=demo.rev, assignment=assignment, at=now)

    assert refused.value.codes == ["missing_duty", "sod_conflict"]


# --- only pending grants are decided ----------------------------------------------------------


def test_approving_an_active_grant_is_a_state_error(demo, now, nothing_written):
    active = RoleAssignment.objects.get(user=demo.rev, role__slug="reviewer", environment=demo.staging)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        services.role_assignment_approve(actor=demo.sec, assignment=active, at=now)

    assert refused.value.codes == ["invalid_state"]
    assert refused.value.status_code == 409


def test_a_grant_is_approved_once(demo, now, grant, nothing_written):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)
    services.role_assignment_approve(actor=demo.sec, assignment=assignment, at=now)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        services.role_assignment_approve(actor=demo.admin, assignment=assignment, at=now)

    assert refused.value.codes == ["invalid_state"]
    assert "this one is active" in refused.value.messages()[0]


@pytest.mark.parametrize("end", ["reject", "revoke"])
def test_an_ended_request_cannot_be_approved(demo, now, grant, nothing_written, end):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)
    if end == "reject":
        services.role_assignment_reject(actor=demo.sec, assignment=assignment, reason="Not needed", at=now)
    else:
        services.role_assignment_revoke(actor=demo.mgr, assignment=assignment, reason="Not needed", at=now)

    with nothing_written(), pytest.raises(InvalidState):
        services.role_assignment_approve(actor=demo.sec, assignment=assignment, at=now)


def test_a_request_whose_expiry_passed_cannot_be_approved(demo, now, grant, nothing_written):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=1)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        services.role_assignment_approve(actor=demo.sec, assignment=assignment, at=now + timedelta(days=1))

    assert "expiry has passed" in refused.value.messages()[0]


# --- reject and withdraw ----------------------------------------------------------------------


def test_security_rejects_a_pending_grant(demo, now, grant, refetch):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)

    rejected = services.role_assignment_reject(
        actor=demo.sec, assignment=assignment, reason="  dev2 is not on the production rota  ", at=now
    )

    assert rejected.status == Status.REJECTED
    assert rejected.ended_by == demo.sec
    assert rejected.ended_at == now
    assert rejected.end_reason == "dev2 is not on the production rota"
    assert not refetch(demo.dev2).has_perm(duties.permission(duties.APPROVE), demo.production)


def test_the_requester_withdraws_their_request(demo, now, grant):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)

    withdrawn = services.role_assignment_reject(actor=demo.mgr, assignment=assignment, at=now)

    assert withdrawn.status == Status.REJECTED
    assert withdrawn.ended_by == demo.mgr


def test_rejecting_needs_the_approver_duties(demo, now, grant, nothing_written):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.role_assignment_reject(actor=demo.rev, assignment=assignment, at=now)

    assert refused.value.codes == ["missing_duty"]


def test_only_pending_grants_are_rejected(demo, now, nothing_written):
    active = RoleAssignment.objects.get(user=demo.rev, role__slug="reviewer", environment=demo.staging)

    with nothing_written(), pytest.raises(InvalidState):
        services.role_assignment_reject(actor=demo.sec, assignment=active, at=now)
