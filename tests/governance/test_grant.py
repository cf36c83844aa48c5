"""G1–G3: who may request a grant, for whom, with what justification and expiry, and which
combinations of duties a grant may never create (RULES.md section 2)."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from governance import duties, services
from core.errors import Denied
from governance.models import RoleAssignment
from governance.selectors import has_duty

DEPLOY = duties.permission(duties.DEPLOY)
APPROVE = duties.permission(duties.APPROVE)


def approved_exception(demo, now, *, user, duty_a, duty_b, environment, days=30):
    """mgr asks, sec (neither holder nor requester) approves: an SoD exception in force."""
    exception = services.sod_exception_request(
        actor=demo.mgr, user=user, duty_a=duty_a, duty_b=duty_b, environment=environment,
        justification="Incident cover while the on-call deployer is away", expires_at=now + timedelta(days=days),
        at=now,
    )
    return services.sod_exception_approve(actor=demo.sec, exception=exception, at=now)


# --- allowed ----------------------------------------------------------------------------------


def test_manager_grants_a_non_privileged_role_to_a_team_member(demo, now, grant, refetch):
    assignment = grant(demo.mgr, demo.dev2, "reviewer", demo.development)

    assert assignment.status == RoleAssignment.Status.ACTIVE
    assert assignment.requested_by == demo.mgr
    assert assignment.justification == "dev2 covers reviewer this quarter"
    assert has_duty(demo.dev2, duties.APPROVE, environment=demo.development, at=now)
    assert refetch(demo.dev2).has_perm(APPROVE, demo.development)
    assert not refetch(demo.dev2).has_perm(APPROVE, demo.staging)


def test_superuser_may_grant_in_any_team(demo, grant):
    assignment = grant(demo.admin, demo.idev, "reviewer", demo.development, team=demo.identity)

    assert assignment.status == RoleAssignment.Status.ACTIVE
    assert assignment.team == demo.identity


def test_a_granted_manager_may_grant_in_turn(demo, now, grant):
    dev2_as_manager = grant(demo.admin, demo.dev2, "manager", days=30)
    services.role_assignment_approve(actor=demo.sec, assignment=dev2_as_manager, at=now)

    assignment = grant(demo.dev2, demo.rev2, "reviewer", demo.development)

    assert assignment.status == RoleAssignment.Status.ACTIVE


# --- G1: who may grant, to whom ---------------------------------------------------------------


def test_nobody_grants_to_themselves(demo, grant, nothing_written):
    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.mgr, "reviewer", demo.staging)

    assert refused.value.codes == ["self_grant"]


def test_a_developer_granting_themselves_hears_every_reason(demo, grant, nothing_written):
    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.dev, demo.dev, "reviewer", demo.staging)

    assert refused.value.codes == ["self_grant", "missing_duty"]


def test_three_reasons_at_once_are_all_reported(demo, grant, nothing_written):
    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.dev, demo.dev, "reviewer", demo.staging, team=demo.identity)

    assert refused.value.codes == ["self_grant", "missing_duty", "not_team_member"]


@pytest.mark.parametrize("actor", ["rev", "sec", "auditor", "dev"])
def test_granting_needs_manage_roles_in_the_team(demo, grant, nothing_written, actor):
    with nothing_written(), pytest.raises(Denied) as refused:
        grant(getattr(demo, actor), demo.dev2, "reviewer", demo.staging)

    assert refused.value.codes == ["missing_duty"]
    assert "manage_roles in team payments" in refused.value.messages()[0]


def test_a_manager_of_payments_may_not_grant_in_identity(demo, grant, nothing_written):
    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.idev, "reviewer", demo.staging, team=demo.identity)

    assert refused.value.codes == ["missing_duty"]
    assert "identity" in refused.value.messages()[0]


def test_grants_go_to_members_of_the_team_only(demo, grant, nothing_written):
    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.idev, "reviewer", demo.staging)

    assert refused.value.codes == ["not_team_member"]
    assert "idev is not a member of team payments" in refused.value.messages()[0]


def test_a_disabled_administrator_account_grants_nothing(demo, grant, nothing_written, refetch):
    get_user_model().objects.filter(pk=demo.admin.pk).update(is_active=False)

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(refetch(demo.admin), demo.dev2, "reviewer", demo.development)

    assert refused.value.codes == ["missing_duty"]


def test_a_disabled_account_gets_no_grant(demo, grant, nothing_written):
    get_user_model().objects.filter(pk=demo.dev2.pk).update(is_active=False)

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.dev2, "reviewer", demo.development)

    assert refused.value.codes == ["inactive_user"]


# --- G3: static separation of duties ----------------------------------------------------------


def test_developer_on_production_may_not_also_deploy_there(demo, grant, nothing_written):
    dev_on_production = RoleAssignment.objects.get(user=demo.dev, role__slug="developer", environment=demo.production)

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.dev, "operations", demo.production, days=30)

    assert refused.value.codes == ["sod_conflict"]
    message = refused.value.messages()[0]
    assert f"grant #{dev_on_production.pk} (developer in production, team payments)" in message
    assert "submit and deploy" in message


def test_operator_on_production_may_not_also_submit_there(demo, grant, nothing_written):
    ops_on_production = RoleAssignment.objects.get(user=demo.ops, role__slug="operations", environment=demo.production)

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.ops, "developer", demo.production, days=30)

    assert refused.value.codes == ["sod_conflict"]
    assert f"grant #{ops_on_production.pk} (operations in production" in refused.value.messages()[0]


def test_reviewer_on_production_may_not_also_deploy_there(demo, grant, nothing_written):
    rev_on_production = RoleAssignment.objects.get(user=demo.rev, role__slug="reviewer", environment=demo.production)

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.rev, "operations", demo.production, days=30)

    assert refused.value.codes == ["sod_conflict"]
    assert f"grant #{rev_on_production.pk} (reviewer in production" in refused.value.messages()[0]
    assert "approve and deploy" in refused.value.messages()[0]


def test_operator_may_not_become_reviewer_on_production(demo, grant, nothing_written):
    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.ops, "reviewer", demo.production, days=30)

    assert refused.value.codes == ["sod_conflict"]


def test_security_for_every_environment_conflicts_with_deploying_to_production(demo, grant, nothing_written):
    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.ops, "security", None, days=30)

    assert refused.value.codes == ["sod_conflict"]
    assert "for production (production)" in refused.value.messages()[0]


def test_a_pending_conflicting_grant_already_counts(demo, grant, nothing_written):
    grant(demo.mgr, demo.rev2, "security", demo.production, days=30)

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.rev2, "operations", demo.production, days=30)

    assert "sod_conflict" in refused.value.codes


def test_conflict_rules_bind_production_tier_only(demo, now, grant, refetch):
    assignment = grant(demo.mgr, demo.dev, "operations", demo.staging)

    assert assignment.status == RoleAssignment.Status.ACTIVE
    assert has_duty(demo.dev, duties.DEPLOY, environment=demo.staging, at=now)
    assert refetch(demo.dev).has_perm(DEPLOY, demo.staging)


def test_an_expired_grant_no_longer_conflicts(demo, grant):
    dev_on_production = RoleAssignment.objects.get(user=demo.dev, role__slug="developer", environment=demo.production)
    after_expiry = dev_on_production.expires_at + timedelta(seconds=1)

    # mgr's own demo grant lapses at the same moment; the administrator asks instead.
    assignment = grant(demo.admin, demo.dev, "operations", demo.production, days=30, at=after_expiry)

    assert assignment.status == RoleAssignment.Status.PENDING


# --- G3: SoD exceptions -----------------------------------------------------------------------


def test_an_active_exception_lets_the_conflicting_grant_through(demo, now, grant, refetch):
    exception = approved_exception(
        demo, now, user=demo.dev, duty_a=duties.SUBMIT, duty_b=duties.DEPLOY, environment=demo.production
    )

    assignment = grant(demo.mgr, demo.dev, "operations", demo.production, days=7)
    assert assignment.status == RoleAssignment.Status.PENDING
    assert assignment.sod_exception == exception

    services.role_assignment_approve(actor=demo.sec, assignment=assignment, at=now)
    assignment.refresh_from_db()
    assert assignment.status == RoleAssignment.Status.ACTIVE
    assert assignment.sod_exception == exception
    assert refetch(demo.dev).has_perm(DEPLOY, demo.production)


def test_an_exception_for_every_environment_covers_production(demo, now, grant):
    exception = approved_exception(
        demo, now, user=demo.dev, duty_a=duties.DEPLOY, duty_b=duties.SUBMIT, environment=None
    )

    assignment = grant(demo.mgr, demo.dev, "operations", demo.production, days=7)

    assert assignment.sod_exception == exception


def test_an_exception_for_another_user_covers_nothing(demo, now, grant, nothing_written):
    approved_exception(
        demo, now, user=demo.dev2, duty_a=duties.SUBMIT, duty_b=duties.DEPLOY, environment=demo.production
    )

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.dev, "operations", demo.production, days=7)

    assert refused.value.codes == ["sod_conflict"]


def test_an_expired_exception_covers_nothing(demo, now, grant, nothing_written):
    approved_exception(
        demo, now, user=demo.dev, duty_a=duties.SUBMIT, duty_b=duties.DEPLOY, environment=demo.production, days=1
    )

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.dev, "operations", demo.production, days=7, at=now + timedelta(days=2))

    assert refused.value.codes == ["sod_conflict"]


def test_an_exception_for_another_environment_covers_nothing(demo, now, grant, nothing_written):
    staging_tier_exception = approved_exception(
        demo, now, user=demo.dev, duty_a=duties.SUBMIT, duty_b=duties.DEPLOY, environment=demo.staging
    )
    assert staging_tier_exception.status == staging_tier_exception.Status.ACTIVE

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.dev, "operations", demo.production, days=7)

    assert refused.value.codes == ["sod_conflict"]


def test_an_exception_for_other_duties_covers_nothing(demo, now, grant, nothing_written):
    approved_exception(
        demo, now, user=demo.dev, duty_a=duties.APPROVE, duty_b=duties.DEPLOY, environment=demo.production
    )

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.dev, "operations", demo.production, days=7)

    assert refused.value.codes == ["sod_conflict"]


def test_a_pending_exception_covers_nothing(demo, now, grant, nothing_written):
    services.sod_exception_request(
        actor=demo.mgr, user=demo.dev, duty_a=duties.SUBMIT, duty_b=duties.DEPLOY, environment=demo.production,
        justification="Waiting for security", expires_at=now + timedelta(days=30), at=now,
    )

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.dev, "operations", demo.production, days=7)

    assert refused.value.codes == ["sod_conflict"]


def test_a_revoked_exception_covers_nothing(demo, now, grant, nothing_written):
    exception = approved_exception(
        demo, now, user=demo.dev, duty_a=duties.SUBMIT, duty_b=duties.DEPLOY, environment=demo.production
    )
    services.sod_exception_revoke(actor=demo.sec, exception=exception, reason="Incident closed", at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.dev, "operations", demo.production, days=7)

    assert refused.value.codes == ["sod_conflict"]


# --- G2: justification, expiry, scope ---------------------------------------------------------


@pytest.mark.parametrize("justification", ["", "   \n"])
def test_every_grant_needs_a_justification(demo, grant, nothing_written, justification):
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        grant(demo.mgr, demo.dev2, "reviewer", demo.development, justification=justification)

    assert set(invalid.value.message_dict) == {"justification"}


@pytest.mark.parametrize(
    "role_slug, environment",
    [("operations", "production"), ("reviewer", "production"), ("security", "staging"), ("security", None),
     ("manager", None)],
)
def test_privileged_grants_need_an_expiry(demo, grant, nothing_written, role_slug, environment):
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        grant(demo.mgr, demo.rev2, role_slug, getattr(demo, environment) if environment else None)

    assert set(invalid.value.message_dict) == {"expires_at"}
    assert "needs an expiry" in invalid.value.message_dict["expires_at"][0]


def test_privileged_grants_last_at_most_ninety_days(demo, grant, nothing_written):
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        grant(demo.mgr, demo.rev2, "security", demo.staging, days=91)

    assert "at most 90 days" in invalid.value.message_dict["expires_at"][0]


def test_ninety_days_exactly_is_allowed(demo, grant):
    assignment = grant(demo.mgr, demo.rev2, "security", demo.staging, days=90)

    assert assignment.status == RoleAssignment.Status.PENDING


def test_the_maximum_lifetime_is_configurable(demo, grant, settings, nothing_written):
    settings.COUNTERSIGN_MAX_PRIVILEGED_GRANT_DAYS = 14

    with nothing_written(), pytest.raises(ValidationError) as invalid:
        grant(demo.mgr, demo.rev2, "security", demo.staging, days=15)

    assert "at most 14 days" in invalid.value.message_dict["expires_at"][0]
    assert grant(demo.mgr, demo.rev2, "security", demo.staging, days=14).status == RoleAssignment.Status.PENDING


def test_non_privileged_grants_need_no_expiry(demo, grant):
    assert grant(demo.mgr, demo.rev2, "operations", demo.development).expires_at is None


@pytest.mark.parametrize("role_slug, days", [("reviewer", 0), ("reviewer", -1), ("security", -3)])
def test_the_expiry_may_not_be_in_the_past(demo, grant, nothing_written, role_slug, days):
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        grant(demo.mgr, demo.rev2, role_slug, demo.development, days=days)

    assert invalid.value.message_dict["expires_at"] == ["The expiry must be in the future."]


@pytest.mark.parametrize("role_slug", ["developer", "reviewer", "operations"])
def test_environment_scoped_roles_need_an_environment(demo, grant, nothing_written, role_slug):
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        grant(demo.mgr, demo.rev2, role_slug, None, days=30)

    assert set(invalid.value.message_dict) == {"environment"}
    assert "choose it" in invalid.value.message_dict["environment"][0]


@pytest.mark.parametrize("role_slug, days", [("manager", 30), ("compliance", 30)])
def test_team_and_global_roles_take_no_environment(demo, grant, nothing_written, role_slug, days):
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        grant(demo.mgr, demo.rev2, role_slug, demo.staging, days=days)

    assert set(invalid.value.message_dict) == {"environment"}


def test_several_invalid_fields_are_reported_together(demo, grant, nothing_written):
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        grant(demo.mgr, demo.rev2, "operations", None, justification="", days=-1)

    assert set(invalid.value.message_dict) == {"justification", "environment", "expires_at"}


# --- duplicates -------------------------------------------------------------------------------


def test_an_active_role_is_not_granted_twice(demo, grant, nothing_written):
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        grant(demo.mgr, demo.dev, "developer", demo.staging)

    assert "dev already has this role here" in invalid.value.message_dict["role"][0]


def test_a_pending_role_is_not_requested_twice(demo, grant, nothing_written):
    grant(demo.mgr, demo.rev2, "security", demo.staging, days=30)

    with nothing_written(), pytest.raises(ValidationError) as invalid:
        grant(demo.mgr, demo.rev2, "security", demo.staging, days=30)

    assert "pending" in invalid.value.message_dict["role"][0]


def test_the_same_role_for_another_environment_is_no_duplicate(demo, grant):
    assert grant(demo.mgr, demo.rev, "reviewer", demo.development).status == RoleAssignment.Status.ACTIVE


def test_a_revoked_role_may_be_granted_again(demo, now, grant):
    first = grant(demo.mgr, demo.dev2, "reviewer", demo.development)
    services.role_assignment_revoke(actor=demo.mgr, assignment=first, reason="Moved to another project", at=now)

    assert grant(demo.mgr, demo.dev2, "reviewer", demo.development).status == RoleAssignment.Status.ACTIVE
