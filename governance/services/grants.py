"""Every write to the governance domain (ARCHITECTURE.md principle 1).

Each service checks its rules, changes state, re-syncs derived permissions and records one audit
event, in one transaction. Refusals raise ``Denied`` (403, all reasons), ``InvalidState`` (409) or
``ValidationError`` (400, field messages); nothing is written when they do.
"""
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

import audit
from governance import conflicts, duties
from core.errors import Denied, InvalidState, Reason
from governance.conflicts import Conflict
from governance.models import (
    ConflictRule,
    Environment,
    Role,
    RoleAssignment,
    SoDException,
    Team,
)
from governance.permissions import sync_permissions
from governance.selectors import has_duty, has_duty_for, is_member
from core.english import possessive
from core.shapes import UpdateShape

Status = RoleAssignment.Status


def max_privileged_lifetime() -> timedelta:
    return timedelta(days=settings.COUNTERSIGN_MAX_PRIVILEGED_GRANT_DAYS)


def role_duties(role: Role) -> set[str]:
    return set(role.duties.values_list("duty", flat=True))


def is_privileged(role: Role, environment: Environment | None, role_duty_set: set[str] | None = None) -> bool:
    """G2 (``governance.conflicts.is_privileged``), with what it reads loaded."""
    duty_set = role_duty_set if role_duty_set is not None else role_duties(role)
    production_exists = False
    if environment is None and not role.is_privileged and duty_set & conflicts.ENVIRONMENT_DUTIES:
        production_exists = Environment.objects.filter(tier=Environment.Tier.PRODUCTION).exists()
    return conflicts.is_privileged(
        role_is_privileged=role.is_privileged, role_duties=duty_set,
        environment_is_production=None if environment is None else environment.is_production,
        production_exists=production_exists,
    )


def find_conflicts(
    *, user, role: Role, environment: Environment | None, at: datetime, exclude: RoleAssignment | None = None
) -> list[Conflict]:
    """G3 (``governance.conflicts.conflicts``): what the grant would break, with the user's grants
    in force or pending loaded for the rule."""
    new_duties = role_duties(role) & conflicts.ENVIRONMENT_DUTIES
    if not new_duties:
        return []
    rules = list(ConflictRule.objects.filter(is_active=True))
    if not rules:
        return []
    held = (
        RoleAssignment.objects.open(at).filter(user_id=user.pk)
        .select_related("role", "environment", "team")
        .prefetch_related("role__duties")
    )
    if exclude is not None:
        held = held.exclude(pk=exclude.pk)
    return conflicts.conflicts(
        new_duties=new_duties, environment=environment,
        held=[conflicts.Held(a, frozenset(d.duty for d in a.role.duties.all())) for a in held],
        rules=rules, environments=list(Environment.objects.all()),
        exceptions=list(SoDException.objects.active(at).filter(user_id=user.pk)), at=at,
    )


def _is_administrator(actor) -> bool:
    """A superuser whose account is enabled: like ``has_duty``, a disabled account holds no authority."""
    return actor.is_active and actor.is_superuser


def _can_administer_grants(actor, team: Team, at) -> bool:
    return _is_administrator(actor) or has_duty(actor, duties.MANAGE_ROLES, team=team, at=at)


def _validate_grant(*, role, environment, justification, expires_at, privileged, at) -> None:
    errors = conflicts.grant_errors(
        role_scope=role.scope, role_slug=role.slug, has_environment=environment is not None,
        justification=justification, expires_at=expires_at, privileged=privileged, at=at,
        max_lifetime=max_privileged_lifetime(),
    )
    if errors:
        raise ValidationError(errors)


def lock_user(user, *, shared: bool = False):
    """The first lock of every decision about or by a person (docs/architecture.md, "Lock order").

    The grant services take the grantee's row, so two concurrent grants cannot together create a
    conflict; the releases services that exercise a duty (approve, reject, deploy, roll back,
    review) take the actor's row before reading the actor's grants, so a revocation committed
    while they wait takes effect for them. ``FOR NO KEY UPDATE``: it orders these writers among
    themselves without blocking the foreign-key checks of rows that merely name the user (an
    audit event's actor, an approval's reviewer), which would otherwise wait on it while holding
    the chain head.

    ``shared`` (the releases services, for their actor): ``FOR SHARE`` on PostgreSQL. One person's
    decisions then run side by side (a CI account deploying many changes at once, issue 21), while
    a grant service's lock on that person still waits for the decisions in flight and they for it:
    a revocation takes effect for every decision that reads the grants after it, as before. Foreign
    keys' ``FOR KEY SHARE`` does not conflict with it either."""
    User = get_user_model()
    if not shared or connection.vendor != "postgresql":  # SQLite: one write transaction at a time already
        return User.objects.select_for_update(no_key=True).get(pk=user.pk)
    table, pk = connection.ops.quote_name(User._meta.db_table), connection.ops.quote_name(User._meta.pk.column)
    locked = next(iter(User.objects.raw(f"SELECT * FROM {table} WHERE {pk} = %s FOR SHARE", [user.pk])), None)  # nosec B608
    if locked is None:
        raise User.DoesNotExist(f"No user {user.pk}.")
    return locked


def _grant_data(assignment: RoleAssignment, **extra) -> dict:
    return {
        "assignment": assignment.pk,
        "user": assignment.user.username,
        "role": assignment.role.slug,
        "team": assignment.team.slug,
        "environment": assignment.environment.slug if assignment.environment_id else None,
        "expires_at": assignment.expires_at,
        "status": assignment.status,
        **extra,
    }


def _record_grant_event(action: str, assignment: RoleAssignment, *, actor, at, **extra) -> None:
    audit.record(
        action,
        actor=actor,
        target=assignment,
        team=assignment.team.slug,
        environment=assignment.environment.slug if assignment.environment_id else "",
        data=_grant_data(assignment, **extra),
        at=at,
    )


@transaction.atomic
def role_grant(
    *,
    actor,
    user,
    role: Role,
    team: Team,
    environment: Environment | None = None,
    justification: str,
    expires_at: datetime | None = None,
    at: datetime | None = None,
) -> RoleAssignment:
    """G1–G4: request a grant. Non-privileged grants are active at once; privileged ones wait for a
    second approver."""
    at = at or timezone.now()
    duty_set = role_duties(role)
    privileged = is_privileged(role, environment, duty_set)
    _validate_grant(
        role=role, environment=environment, justification=justification, expires_at=expires_at,
        privileged=privileged, at=at,
    )
    user = lock_user(user)
    reasons: list[Reason] = []
    if actor.pk == user.pk:
        reasons.append(Reason("self_grant", "Nobody may grant a role to themselves."))
    if not _can_administer_grants(actor, team, at):
        reasons.append(Reason("missing_duty", f"You do not hold manage_roles in team {team.slug}."))
    if not is_member(user, team):
        reasons.append(Reason("not_team_member", f"{user.username} is not a member of team {team.slug}."))
    if not user.is_active:
        reasons.append(Reason("inactive_user", f"{possessive(user.username)} account is disabled."))
    found = find_conflicts(user=user, role=role, environment=environment, at=at)
    reasons.extend(c.reason() for c in found if c.exception is None)
    if reasons:
        raise Denied(reasons)
    duplicate = (
        RoleAssignment.objects.open(at)
        .filter(user_id=user.pk, role=role, team=team, environment=environment)
        .first()
    )
    if duplicate is not None:
        raise ValidationError(
            {"role": [f"{user.username} already has this role here ({conflicts.describe(duplicate)}, {duplicate.status})."]}
        )
    exception = next((c.exception for c in found), None)
    assignment = RoleAssignment.objects.create(
        user=user,
        role=role,
        team=team,
        environment=environment,
        justification=justification.strip(),
        status=Status.PENDING if privileged else Status.ACTIVE,
        requested_by=actor,
        created_at=at,
        approved_at=None if privileged else at,
        expires_at=expires_at,
        sod_exception=exception,
    )
    _record_grant_event(
        "role.grant_requested" if privileged else "role.granted",
        assignment,
        actor=actor,
        at=at,
        justification=assignment.justification,
        privileged=privileged,
        sod_exception=exception.pk if exception else None,
    )
    if assignment.status == Status.ACTIVE:
        sync_permissions(user, at=at)
    return assignment


def _end_grant(assignment: RoleAssignment, status: str, *, actor, reason: str, at, event: str, data: dict) -> None:
    """Every way a grant ends (rejected, revoked, expired): one state change, one audit event, and
    the permissions re-synced in the same transaction."""
    assignment.status = status
    assignment.ended_at = at
    assignment.ended_by = actor
    assignment.end_reason = reason
    assignment.save(update_fields=["status", "ended_at", "ended_by", "end_reason"])
    _record_grant_event(event, assignment, actor=actor, at=at, **data)
    sync_permissions(assignment.user, at=at)


def _lock_assignment(assignment: RoleAssignment) -> RoleAssignment:
    lock_user(assignment.user)
    return RoleAssignment.objects.select_for_update(of=("self",)).select_related("user", "role", "team", "environment").get(
        pk=assignment.pk
    )


def _grant_approver_reasons(actor, assignment: RoleAssignment, at) -> list[Reason]:
    reasons = []
    if actor.pk in (assignment.requested_by_id, assignment.user_id):
        reasons.append(
            Reason("four_eyes_grant", "A privileged grant must be approved by someone other than its requester and grantee.")
        )
    if not (_can_administer_grants(actor, assignment.team, at)
            or has_duty_for(actor, duties.SECURITY_APPROVE, assignment.environment, at=at)):
        where = assignment.environment.slug if assignment.environment_id else "all environments"
        reasons.append(Reason(
            "missing_duty", f"Approving needs manage_roles in team {assignment.team.slug} or security_approve for {where}."))
    return reasons


@transaction.atomic
def role_assignment_approve(*, actor, assignment: RoleAssignment, at: datetime | None = None) -> RoleAssignment:
    """G4: a second person activates a pending privileged grant; conflicts are checked again."""
    at = at or timezone.now()
    assignment = _lock_assignment(assignment)
    if assignment.status != Status.PENDING:
        raise InvalidState(f"Only pending grants can be approved; this one is {assignment.status}.")
    if assignment.expires_at is not None and assignment.expires_at <= at:
        raise InvalidState("This grant's expiry has passed; request a new one.")
    reasons = _grant_approver_reasons(actor, assignment, at)
    found = find_conflicts(
        user=assignment.user, role=assignment.role, environment=assignment.environment, at=at, exclude=assignment
    )
    reasons.extend(c.reason() for c in found if c.exception is None)
    if reasons:
        raise Denied(reasons)
    assignment.status = Status.ACTIVE
    assignment.approved_by = actor
    assignment.approved_at = at
    assignment.sod_exception = next((c.exception for c in found), assignment.sod_exception)
    assignment.save(update_fields=["status", "approved_by", "approved_at", "sod_exception"])
    _record_grant_event("role.grant_approved", assignment, actor=actor, at=at)
    sync_permissions(assignment.user, at=at)
    return assignment


@transaction.atomic
def role_assignment_reject(
    *, actor, assignment: RoleAssignment, reason: str = "", at: datetime | None = None
) -> RoleAssignment:
    """Turn down a pending grant. Its requester may withdraw it; otherwise the approver rules apply."""
    at = at or timezone.now()
    assignment = _lock_assignment(assignment)
    if assignment.status != Status.PENDING:
        raise InvalidState(f"Only pending grants can be rejected; this one is {assignment.status}.")
    if actor.pk != assignment.requested_by_id:
        reasons = _grant_approver_reasons(actor, assignment, at)
        reasons = [r for r in reasons if r.code != "four_eyes_grant" or actor.pk == assignment.user_id]
        if reasons:
            raise Denied(reasons)
    reason = (reason or "").strip()
    _end_grant(assignment, Status.REJECTED, actor=actor, reason=reason, at=at, event="role.grant_rejected",
               data={"reason": reason})
    return assignment


@transaction.atomic
def role_assignment_revoke(
    *, actor, assignment: RoleAssignment, reason: str, at: datetime | None = None
) -> RoleAssignment:
    """G5: revoke at once; permissions are re-synced in the same transaction. Grantees may give
    up their own grants; otherwise managers of the team, security or a superuser revoke."""
    at = at or timezone.now()
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why the grant is revoked."]})
    assignment = _lock_assignment(assignment)
    if assignment.status not in (Status.ACTIVE, Status.PENDING):
        raise InvalidState(f"Only active or pending grants can be revoked; this one is {assignment.status}.")
    may_revoke = (
        actor.pk == assignment.user_id
        or _can_administer_grants(actor, assignment.team, at)
        or has_duty(actor, duties.SECURITY_APPROVE, at=at)
    )
    if not may_revoke:
        raise Denied(
            Reason("missing_duty", f"Revoking needs manage_roles in team {assignment.team.slug} or security_approve.")
        )
    _end_grant(assignment, Status.REVOKED, actor=actor, reason=reason.strip(), at=at, event="role.revoked",
               data={"reason": reason.strip()})
    return assignment


def role_assignments_expire_due(*, at: datetime | None = None) -> int:
    """G5: mark grants whose expiry has passed as expired (the scheduled task calls this). Each
    grant is its own transaction, so one failure does not hold back the others; safe to run twice."""
    at = at or timezone.now()
    due = list(
        RoleAssignment.objects.filter(
            status__in=[Status.ACTIVE, Status.PENDING], expires_at__lte=at
        ).values_list("pk", flat=True)
    )
    expired = 0
    for pk in due:
        with transaction.atomic():
            assignment = RoleAssignment.objects.select_for_update(of=("self",)).select_related(
                "user", "role", "team", "environment"
            ).get(pk=pk)
            if assignment.status not in (Status.ACTIVE, Status.PENDING) or assignment.expires_at > at:
                continue
            _end_grant(assignment, Status.EXPIRED, actor=None, reason="expired", at=at, event="role.expired", data={})
            expired += 1
    return expired


@transaction.atomic
def role_assignment_bootstrap(
    *,
    user,
    role: Role,
    team: Team,
    environment: Environment | None = None,
    justification: str,
    expires_at: datetime | None = None,
    source: str,
    at: datetime | None = None,
) -> RoleAssignment:
    """The first grants of an installation, made before anyone can approve them (G4 needs a second
    person who already holds a duty). Used by ``seed_demo`` for the first security officer and
    manager; recorded as ``role.bootstrapped`` with no actor, so auditors see exactly which grants
    did not pass four eyes. Expiry rules still apply."""
    at = at or timezone.now()
    privileged = is_privileged(role, environment)
    _validate_grant(
        role=role, environment=environment, justification=justification, expires_at=expires_at,
        privileged=privileged, at=at,
    )
    user = lock_user(user)
    if not is_member(user, team):
        raise Denied(Reason("not_team_member", f"{user.username} is not a member of team {team.slug}."))
    assignment = RoleAssignment.objects.create(
        user=user, role=role, team=team, environment=environment, justification=justification,
        status=Status.ACTIVE, created_at=at, approved_at=at, expires_at=expires_at,
    )
    _record_grant_event("role.bootstrapped", assignment, actor=None, at=at, source=source)
    sync_permissions(user, at=at)
    return assignment


def _grants_used(codes: tuple[str, ...]) -> UpdateShape:
    """The ``last_used_at`` update for one set of duty codes, compiled once (issue 21)."""
    shape = _GRANTS_USED.get(codes)
    if shape is None:
        shape = _GRANTS_USED[codes] = UpdateShape(
            lambda user_id, environment_id, at: (
                RoleAssignment.objects.in_force(at).filter(
                    Q(environment_id=environment_id) | Q(environment__isnull=True),
                    user_id=user_id,
                    role__duties__duty__in=list(codes),
                ),
                {"last_used_at": at},
            ),
            user_id=int, environment_id=int, at=datetime,
        )
    return shape


_GRANTS_USED: dict[tuple[str, ...], UpdateShape] = {}


def duties_used(*, actor, environment: Environment, duty_codes, at: datetime) -> None:
    """Record ``last_used_at`` on the grants in force whose duty the actor just exercised (A2): the
    releases services call this, so no other app writes a role assignment (ARCHITECTURE principle 5).
    The update is compiled once per set of duties (``core.shapes``): it runs on every decision."""
    codes = tuple(sorted(set(duty_codes)))
    if codes:
        _grants_used(codes).execute(user_id=actor.pk, environment_id=environment.pk, at=at)

