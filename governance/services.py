"""Every write to the governance domain (ARCHITECTURE.md principle 1).

Each service checks its rules, changes state, re-syncs derived permissions and records one audit
event, in one transaction. Refusals raise ``Denied`` (403, all reasons), ``InvalidState`` (409) or
``ValidationError`` (400, field messages); nothing is written when they do.
"""
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from governance import duties
from governance.errors import Denied, InvalidState, Reason
from governance.models import (
    ApiToken,
    ConflictRule,
    Environment,
    Membership,
    Role,
    RoleAssignment,
    SoDException,
    Team,
)
from governance.permissions import sync_permissions
from governance.selectors import has_duty, has_duty_for, is_member

Status = RoleAssignment.Status


def max_privileged_lifetime() -> timedelta:
    return timedelta(days=settings.COUNTERSIGN_MAX_PRIVILEGED_GRANT_DAYS)


def role_duties(role: Role) -> set[str]:
    return set(role.duties.values_list("duty", flat=True))


def is_privileged(role: Role, environment: Environment | None, role_duty_set: set[str] | None = None) -> bool:
    """G2: any duty on a production-tier environment, or a privileged role (security, manager)."""
    if role.is_privileged:
        return True
    env_duties = (role_duty_set if role_duty_set is not None else role_duties(role)) & set(duties.ENVIRONMENT_DUTIES)
    if not env_duties:
        return False
    if environment is None:
        return Environment.objects.filter(tier=Environment.Tier.PRODUCTION).exists()
    return environment.is_production


def _describe(assignment: RoleAssignment) -> str:
    where = assignment.environment.slug if assignment.environment_id else "all environments"
    return f"grant #{assignment.pk} ({assignment.role.slug} in {where}, team {assignment.team.slug})"


@dataclass(frozen=True)
class Conflict:
    rule: ConflictRule
    environment: Environment
    other: RoleAssignment | None  # None: the role conflicts with itself
    exception: SoDException | None

    def reason(self) -> Reason:
        against = _describe(self.other) if self.other else "the duties of this role itself"
        return Reason(
            "sod_conflict",
            f"Conflicts with {against}: {self.rule.duty_a} and {self.rule.duty_b} may not be held together "
            f"for {self.environment.slug} ({self.environment.tier}).",
        )


def find_conflicts(
    *, user, role: Role, environment: Environment | None, at: datetime, exclude: RoleAssignment | None = None
) -> list[Conflict]:
    """G3: conflicts the grant would create with the user's active or pending assignments."""
    new_duties = role_duties(role) & set(duties.ENVIRONMENT_DUTIES)
    if not new_duties:
        return []
    rules = list(ConflictRule.objects.filter(is_active=True))
    if not rules:
        return []
    all_environments = list(Environment.objects.all())
    targets = [environment] if environment is not None else all_environments
    held = (
        RoleAssignment.objects.filter(user_id=user.pk, status__in=[Status.ACTIVE, Status.PENDING])
        .exclude(expires_at__lte=at)
        .select_related("role", "environment", "team")
        .prefetch_related("role__duties")
    )
    if exclude is not None:
        held = held.exclude(pk=exclude.pk)
    exceptions = list(SoDException.objects.active(at).filter(user_id=user.pk))

    def covered(rule, env):
        return next((e for e in exceptions if e.covers(rule.duty_a, rule.duty_b, env, at)), None)

    found: list[Conflict] = []
    for rule in rules:
        for env in targets:
            if rule.applies_to(env) and rule.pairs(new_duties, new_duties):
                found.append(Conflict(rule, env, None, covered(rule, env)))
    for other in held:
        other_duties = {d.duty for d in other.role.duties.all()} & set(duties.ENVIRONMENT_DUTIES)
        other_targets = [other.environment] if other.environment_id else all_environments
        overlap = [env for env in targets if env in other_targets]
        for rule in rules:
            env = next((e for e in overlap if rule.applies_to(e) and rule.pairs(other_duties, new_duties)), None)
            if env is not None:
                found.append(Conflict(rule, env, other, covered(rule, env)))
    return found


def _is_administrator(actor) -> bool:
    """A superuser whose account is enabled: like ``has_duty``, a disabled account holds no authority."""
    return actor.is_active and actor.is_superuser


def _can_administer_grants(actor, team: Team, at) -> bool:
    return _is_administrator(actor) or has_duty(actor, duties.MANAGE_ROLES, team=team, at=at)


def _validate_grant(*, role, environment, justification, expires_at, privileged, at) -> None:
    errors: dict[str, list[str]] = {}
    if not (justification or "").strip():
        errors["justification"] = ["A justification is required for every grant."]
    if role.scope == Role.Scope.ENVIRONMENT and environment is None:
        errors["environment"] = [f"The {role.slug} role is granted for one environment; choose it."]
    if role.scope in (Role.Scope.TEAM, Role.Scope.GLOBAL) and environment is not None:
        errors["environment"] = [f"The {role.slug} role is not environment-scoped; leave the environment empty."]
    if expires_at is not None and expires_at <= at:
        errors["expires_at"] = ["The expiry must be in the future."]
    elif privileged and expires_at is None:
        errors["expires_at"] = [
            f"This grant is privileged and needs an expiry (at most {max_privileged_lifetime().days} days)."
        ]
    elif privileged and expires_at > at + max_privileged_lifetime():
        errors["expires_at"] = [f"Privileged grants may last at most {max_privileged_lifetime().days} days."]
    if errors:
        raise ValidationError(errors)


def lock_user(user):
    """The first lock of every decision about or by a person (docs/architecture.md, "Lock order").

    The grant services take the grantee's row, so two concurrent grants cannot together create a
    conflict; the releases services that exercise a duty (approve, reject, deploy, roll back,
    review) take the actor's row before reading the actor's grants, so a revocation committed
    while they wait takes effect for them. ``FOR NO KEY UPDATE``: it orders these writers among
    themselves without blocking the foreign-key checks of rows that merely name the user (an
    audit event's actor, an approval's reviewer), which would otherwise wait on it while holding
    the chain head."""
    return get_user_model().objects.select_for_update(no_key=True).get(pk=user.pk)


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
        reasons.append(Reason("inactive_user", f"{user.username}'s account is disabled."))
    conflicts = find_conflicts(user=user, role=role, environment=environment, at=at)
    reasons.extend(c.reason() for c in conflicts if c.exception is None)
    if reasons:
        raise Denied(reasons)
    duplicate = (
        RoleAssignment.objects.filter(
            user_id=user.pk, role=role, team=team, environment=environment, status__in=[Status.ACTIVE, Status.PENDING]
        )
        .exclude(expires_at__lte=at)
        .first()
    )
    if duplicate is not None:
        raise ValidationError(
            {"role": [f"{user.username} already has this role here ({_describe(duplicate)}, {duplicate.status})."]}
        )
    exception = next((c.exception for c in conflicts), None)
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
    conflicts = find_conflicts(
        user=assignment.user, role=assignment.role, environment=assignment.environment, at=at, exclude=assignment
    )
    reasons.extend(c.reason() for c in conflicts if c.exception is None)
    if reasons:
        raise Denied(reasons)
    assignment.status = Status.ACTIVE
    assignment.approved_by = actor
    assignment.approved_at = at
    assignment.sod_exception = next((c.exception for c in conflicts), assignment.sod_exception)
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


# --- SoD exceptions (G3) -------------------------------------------------------------------------


def _exception_data(exception: SoDException, **extra) -> dict:
    return {
        "exception": exception.pk,
        "user": exception.user.username,
        "duties": [exception.duty_a, exception.duty_b],
        "environment": exception.environment.slug if exception.environment_id else None,
        "expires_at": exception.expires_at,
        "status": exception.status,
        **extra,
    }


@transaction.atomic
def sod_exception_request(
    *,
    actor,
    user,
    duty_a: str,
    duty_b: str,
    environment: Environment | None = None,
    justification: str,
    expires_at: datetime,
    at: datetime | None = None,
) -> SoDException:
    """Ask for a time-boxed exception to a conflict rule; a security-duty holder approves it."""
    at = at or timezone.now()
    errors: dict[str, list[str]] = {}
    if not (justification or "").strip():
        errors["justification"] = ["A justification is required."]
    if expires_at is None or expires_at <= at:
        errors["expires_at"] = ["The exception needs an expiry in the future."]
    elif expires_at > at + max_privileged_lifetime():
        errors["expires_at"] = [f"Exceptions may last at most {max_privileged_lifetime().days} days."]
    if duty_a == duty_b or not ConflictRule.objects.filter(
        is_active=True, duty_a__in=[duty_a, duty_b], duty_b__in=[duty_a, duty_b]
    ).exists():
        errors["duty_b"] = ["No conflict rule pairs these duties; no exception is needed."]
    if errors:
        raise ValidationError(errors)
    user_team_ids = user.memberships.values("team_id")
    may_request = (
        _is_administrator(actor)
        or has_duty(actor, duties.SECURITY_APPROVE, at=at)
        or any(has_duty(actor, duties.MANAGE_ROLES, team=t, at=at) for t in Team.objects.filter(pk__in=user_team_ids))
    )
    if not may_request:
        raise Denied(Reason("missing_duty", f"Requesting an exception needs manage_roles in one of {user.username}'s teams."))
    exception = SoDException.objects.create(
        user=user,
        duty_a=duty_a,
        duty_b=duty_b,
        environment=environment,
        justification=justification.strip(),
        expires_at=expires_at,
        requested_by=actor,
        created_at=at,
    )
    audit.record(
        "sod_exception.requested",
        actor=actor,
        target=exception,
        environment=environment.slug if environment else "",
        data=_exception_data(exception, justification=exception.justification),
        at=at,
    )
    return exception


@transaction.atomic
def sod_exception_approve(*, actor, exception: SoDException, at: datetime | None = None) -> SoDException:
    at = at or timezone.now()
    exception = SoDException.objects.select_for_update(of=("self",)).select_related("user", "environment").get(pk=exception.pk)
    if exception.status != SoDException.Status.PENDING:
        raise InvalidState(f"Only pending exceptions can be approved; this one is {exception.status}.")
    if exception.expires_at <= at:
        raise InvalidState("This exception's expiry has passed.")
    reasons = []
    if actor.pk in (exception.user_id, exception.requested_by_id):
        reasons.append(
            Reason("four_eyes_exception", "An exception is approved by someone other than its holder and requester.")
        )
    if not has_duty_for(actor, duties.SECURITY_APPROVE, exception.environment, at=at):
        where = exception.environment.slug if exception.environment_id else "all environments"
        reasons.append(Reason("missing_duty", f"Approving an SoD exception needs security_approve for {where}."))
    if reasons:
        raise Denied(reasons)
    exception.status = SoDException.Status.ACTIVE
    exception.approved_by = actor
    exception.approved_at = at
    exception.save(update_fields=["status", "approved_by", "approved_at"])
    audit.record(
        "sod_exception.approved",
        actor=actor,
        target=exception,
        environment=exception.environment.slug if exception.environment_id else "",
        data=_exception_data(exception),
        at=at,
    )
    return exception


@transaction.atomic
def sod_exception_revoke(*, actor, exception: SoDException, reason: str, at: datetime | None = None) -> SoDException:
    """End an exception. Grants held under it are then reported by the creep scan as conflicts."""
    at = at or timezone.now()
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why the exception is revoked."]})
    exception = SoDException.objects.select_for_update(of=("self",)).select_related("user", "environment").get(pk=exception.pk)
    if exception.status not in (SoDException.Status.PENDING, SoDException.Status.ACTIVE):
        raise InvalidState(f"This exception is already {exception.status}.")
    if not (_is_administrator(actor) or has_duty(actor, duties.SECURITY_APPROVE, at=at)):
        raise Denied(Reason("missing_duty", "Revoking an SoD exception needs security_approve."))
    exception.status = SoDException.Status.REVOKED
    exception.save(update_fields=["status"])
    audit.record(
        "sod_exception.revoked",
        actor=actor,
        target=exception,
        environment=exception.environment.slug if exception.environment_id else "",
        data=_exception_data(exception, reason=reason.strip()),
        at=at,
    )
    return exception


# --- Organisation: memberships (teams, environments, roles and rules are controls) ----------------


@transaction.atomic
def membership_set(*, actor, team: Team, user, is_manager: bool = False) -> Membership:
    """Add a user to a team, or change whether they manage it."""
    if not _can_administer_grants(actor, team, timezone.now()):
        raise Denied(Reason("missing_duty", f"Changing members needs manage_roles in team {team.slug}."))
    membership, created = Membership.objects.get_or_create(team=team, user=user, defaults={"is_manager": is_manager})
    if not created and membership.is_manager != is_manager:
        membership.is_manager = is_manager
        membership.save(update_fields=["is_manager"])
    elif not created:
        return membership
    audit.record(
        "team.member_added" if created else "team.member_changed",
        actor=actor,
        target=membership,
        team=team.slug,
        data={"user": user.username, "is_manager": is_manager},
    )
    return membership


@transaction.atomic
def membership_remove(*, actor, membership: Membership) -> None:
    """Remove a member. Their grants in the team are revoked with it: access follows membership."""
    team = membership.team
    if not _can_administer_grants(actor, team, timezone.now()):
        raise Denied(Reason("missing_duty", f"Changing members needs manage_roles in team {team.slug}."))
    user = membership.user
    for assignment in RoleAssignment.objects.filter(
        user_id=user.pk, team=team, status__in=[Status.ACTIVE, Status.PENDING]
    ):
        role_assignment_revoke(actor=actor, assignment=assignment, reason=f"left team {team.slug}")
    audit.record("team.member_removed", actor=actor, target=membership, team=team.slug, data={"user": user.username})
    membership.delete()


# --- API tokens ----------------------------------------------------------------------------------


@transaction.atomic
def api_token_create(*, actor, user, name: str = "", expires_days: int | None = None,
                     source: str = "") -> tuple[ApiToken, str]:
    """Issue a key for ``user``; the key is returned once and only its hash is stored."""
    if actor is not None and actor.pk != user.pk:
        # A key acts as its user: issuing one for someone else is acting as them (K5). Operators
        # issue pipeline keys with the `create_api_token` command (recorded with no actor).
        raise Denied(Reason("four_eyes_control", "Nobody issues API keys for another person; they issue their own."))
    days = settings.COUNTERSIGN_API_TOKEN_DEFAULT_DAYS if expires_days is None else expires_days
    if days <= 0:
        raise ValidationError({"expires_days": ["A key must live at least one day."]})
    key = "cs_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[:10],
        key_hash=hashlib.sha256(key.encode()).hexdigest(),
        expires_at=timezone.now() + timedelta(days=days),
    )
    audit.record(
        "api_token.created", actor=actor, target=token,
        data={"user": user.username, "expires_at": token.expires_at, "source": source},
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, actor, token: ApiToken) -> ApiToken:
    token = ApiToken.objects.select_for_update(of=("self",)).select_related("user").get(pk=token.pk)
    if actor.pk != token.user_id and not actor.is_superuser:
        raise Denied(Reason("missing_duty", "Only the key's owner or an administrator may revoke it."))
    if token.revoked_at is not None:
        raise InvalidState("This key is already revoked.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record("api_token.revoked", actor=actor, target=token, data={"user": token.user.username})
    return token


def api_token_touch(token: ApiToken, *, at: datetime | None = None) -> None:
    """Record last use, at most once a minute per key, so reads do not become writes."""
    at = at or timezone.now()
    if token.last_used_at is None or at - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=at)
        token.last_used_at = at


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


@transaction.atomic
def user_provision(*, username: str, password: str, email: str = "", is_staff: bool = False,
                   is_superuser: bool = False, source: str):
    """Create an account (seed and setup commands); recorded so the trail starts with its people."""
    users = get_user_model()
    user = users.objects.filter(username=username).first()
    if user is not None:
        return user
    user = users(username=username, email=users.objects.normalize_email(email), is_staff=is_staff or is_superuser,
                 is_superuser=is_superuser)
    user.set_password(password)
    user._countersign_control_change = True  # recorded below, as the seed's provisioning
    user.save()
    audit.record("user.provisioned", actor=None, target=user,
                 data={"username": username, "is_staff": is_staff, "is_superuser": is_superuser, "source": source})
    return user


# --- Access reviews (A1–A3) ----------------------------------------------------------------------


def _review_data(review, **extra) -> dict:
    return {"review": review.pk, "period": review.period, "team": review.team.slug if review.team_id else None, **extra}


def access_review_start(
    *, actor=None, period: str, team: Team | None = None, due_days: int = 14,
    undecided_policy: str = "revoke", at: datetime | None = None,
):
    """A1: start (or resume) the campaign for ``period``; one campaign per period and scope, so the
    schedule and a retried task never create two. Items are built in batches, each batch its own
    transaction, so a worker killed half-way resumes where it stopped."""
    from governance import reviews
    from governance.models import AccessReview, AccessReviewItem

    at = at or timezone.now()
    if actor is not None and not (
        actor.is_superuser
        or has_duty(actor, duties.SECURITY_APPROVE, at=at)
        or (team is not None and has_duty(actor, duties.REVIEW_ACCESS, team=team, at=at))
    ):
        raise Denied(Reason("missing_duty", "Starting an access review needs review_access in the team or security_approve."))
    errors = {}
    if undecided_policy not in AccessReview.UndecidedPolicy.values:
        errors["undecided_policy"] = [f"Choose one of {', '.join(AccessReview.UndecidedPolicy.values)}."]
    if not (period or "").strip() or len(period) > AccessReview._meta.get_field("period").max_length:
        errors["period"] = ["Name the period in 1 to 32 characters, e.g. 2026-Q4."]
    if due_days < 1:
        errors["due_days"] = ["A campaign is due at least one day after it starts."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        review, created = AccessReview.objects.get_or_create(
            period=period, team=team,
            defaults={
                "name": f"Access review {period}" + (f" · {team.slug}" if team else ""),
                "started_by": actor, "created_at": at, "due_at": at + timedelta(days=due_days),
                "undecided_policy": undecided_policy,
            },
        )
        if created:
            audit.record("access_review.started", actor=actor, target=review, team=team.slug if team else "",
                         data=_review_data(review, due_at=review.due_at), at=at)
    if review.status != AccessReview.Status.BUILDING:
        return review
    ctx = reviews.load_context(at)
    done = AccessReviewItem.objects.filter(review=review).order_by("-assignment_id").values_list("assignment_id", flat=True).first()
    for batch in reviews.grants_in_batches(team_id=team.pk if team else None, after_id=done or 0, at=at):
        items = []
        for assignment in batch:
            reviewer_id, by_security = reviews.choose_reviewer(ctx, assignment)
            items.append(AccessReviewItem(
                review=review, assignment=assignment, reviewer_id=reviewer_id, reviewer_is_security=by_security,
                due_at=review.due_at, recommendations=reviews.recommendations(ctx, assignment),
            ))
        with transaction.atomic():
            AccessReviewItem.objects.bulk_create(items, ignore_conflicts=True)
    with transaction.atomic():
        review = AccessReview.objects.select_for_update().get(pk=review.pk)
        if review.status == AccessReview.Status.BUILDING:
            review.status = AccessReview.Status.OPEN
            review.save(update_fields=["status"])
            count = review.items.count()
            audit.record("access_review.opened", actor=actor, target=review, team=team.slug if team else "",
                         data=_review_data(review, items=count), at=at)
            _notify_reviewers(review)
    return review


def _notify_reviewers(review) -> None:
    from django.db.models import Count

    from audit.notifications import notify

    users = get_user_model().objects.filter(access_review_items__review=review).annotate(n=Count("access_review_items"))
    for user in users:
        notify("access_review", subject=f"{review.name}: {user.n} grants to review",
               body=f"Please decide keep or revoke for each grant by {review.due_at:%Y-%m-%d}.",
               team=review.team.slug if review.team_id else "", recipients=[user.email])


def _may_decide(actor, item, at) -> bool:
    """The duty is checked at the moment of deciding: a reviewer who has since lost it may not."""
    if actor.pk == item.assignment.user_id:
        return False
    team = item.assignment.team
    return (
        has_duty(actor, duties.MANAGE_ROLES, team=team, at=at)
        or has_duty(actor, duties.REVIEW_ACCESS, team=team, at=at)
        or (item.reviewer_is_security and has_duty(actor, duties.SECURITY_APPROVE, at=at))
    )


@transaction.atomic
def access_review_item_decide(*, actor, item, decision: str, comment: str = "", at: datetime | None = None):
    """A3: keep or revoke one grant; revoke goes through the grant service."""
    from governance.models import AccessReview, AccessReviewItem

    at = at or timezone.now()
    if decision not in AccessReviewItem.Decision.values:
        raise ValidationError({"decision": ["Choose keep or revoke."]})
    if decision == AccessReviewItem.Decision.REVOKE and not (comment or "").strip():
        raise ValidationError({"comment": ["Say why the grant is revoked."]})
    lock_user(item.assignment.user)  # before the chain head, which the audit event takes
    item = AccessReviewItem.objects.select_for_update(of=("self",)).select_related(
        "review", "assignment", "assignment__team", "assignment__user", "assignment__role"
    ).get(pk=item.pk)
    if actor.pk == item.assignment.user_id:
        raise Denied(Reason("self_review", "Nobody reviews their own access."))
    if not _may_decide(actor, item, at):
        raise Denied(Reason("missing_duty", "Only a manager of the team (or security, for items sent to it) decides it."))
    if item.review.status != AccessReview.Status.OPEN or item.decision:
        raise InvalidState("This item is already decided or its campaign is closed.")
    item.decision = decision
    item.decided_by = actor
    item.decided_at = at
    item.comment = (comment or "").strip()
    item.save(update_fields=["decision", "decided_by", "decided_at", "comment"])
    audit.record("access_review.item_decided", actor=actor, target=item, team=item.assignment.team.slug,
                 data={"review": item.review_id, "assignment": item.assignment_id, "decision": decision,
                       "comment": item.comment, "user": item.assignment.user.username}, at=at)
    if decision == AccessReviewItem.Decision.REVOKE and item.assignment.status in (Status.ACTIVE, Status.PENDING):
        role_assignment_revoke(actor=actor, assignment=item.assignment, reason=f"access review: {item.comment}", at=at)
    return item


def access_reviews_escalate(*, at: datetime | None = None, escalate_after: timedelta = timedelta(days=3)) -> dict:
    """A3: undecided items past due remind their reviewer once; three days later they go to the
    team's managers and security. Each step is audited and happens once per item."""
    from audit.notifications import notify
    from governance.models import AccessReview, AccessReviewItem

    at = at or timezone.now()
    open_items = AccessReviewItem.objects.filter(review__status=AccessReview.Status.OPEN, decision="", due_at__lte=at)
    counts = {"reminded": 0, "escalated": 0}
    for item in open_items.filter(reminded_at__isnull=True).select_related("reviewer", "assignment__team"):
        with transaction.atomic():
            if AccessReviewItem.objects.filter(pk=item.pk, reminded_at__isnull=True).update(reminded_at=at):
                audit.record("access_review.item_reminded", target=item, team=item.assignment.team.slug,
                             data={"review": item.review_id, "reviewer": getattr(item.reviewer, "username", None)}, at=at)
                notify("access_review", subject="Access review overdue", team=item.assignment.team.slug,
                       body=f"Review item #{item.pk} was due {item.due_at:%Y-%m-%d}.",
                       recipients=[getattr(item.reviewer, "email", "")])
                counts["reminded"] += 1
    for item in open_items.filter(
        reminded_at__lte=at - escalate_after, escalated_at__isnull=True
    ).select_related("assignment__team"):
        with transaction.atomic():
            if AccessReviewItem.objects.filter(pk=item.pk, escalated_at__isnull=True).update(escalated_at=at):
                team = item.assignment.team
                managers = duty_holders_emails(duties.MANAGE_ROLES, team=team, at=at)
                security = duty_holders_emails(duties.SECURITY_APPROVE, at=at)
                audit.record("access_review.item_escalated", target=item, team=team.slug,
                             data={"review": item.review_id, "to": sorted(set(managers + security))}, at=at)
                notify("escalation", subject="Access review item escalated", team=team.slug,
                       body=f"Review item #{item.pk} is overdue since {item.due_at:%Y-%m-%d}.",
                       recipients=managers + security)
                counts["escalated"] += 1
    return counts


def duty_holders_emails(duty: str, *, team=None, environment=None, at=None) -> list[str]:
    from governance.selectors import duty_holders

    return [e for e in duty_holders(duty, team=team, environment=environment, at=at).values_list("email", flat=True) if e]


@transaction.atomic
def access_review_close(*, actor=None, review, at: datetime | None = None):
    """A3: close a campaign. Undecided items are never silently kept: they are revoked, or left
    visible with a security alert, as the campaign's policy says."""
    from audit.alerts import raise_alert
    from governance.models import AccessReview

    at = at or timezone.now()
    review = AccessReview.objects.select_for_update(of=("self",)).select_related("team").get(pk=review.pk)
    if actor is not None and not (
        actor.is_superuser
        or has_duty(actor, duties.SECURITY_APPROVE, at=at)
        or (review.team is not None and has_duty(actor, duties.REVIEW_ACCESS, team=review.team, at=at))
    ):
        raise Denied(Reason("missing_duty", "Closing a campaign needs review_access in its team or security_approve."))
    if review.status != AccessReview.Status.OPEN:
        raise InvalidState(f"Only open campaigns close; this one is {review.status}.")
    undecided = list(review.items.filter(decision="").select_related("assignment"))
    # Lock every grantee before the first audit event takes the chain head: lock rows first,
    # then record, as every service does, so no two transactions wait on each other.
    list(get_user_model().objects.select_for_update().filter(
        pk__in={i.assignment.user_id for i in undecided}).order_by("pk").values_list("pk", flat=True))
    revoked = 0
    if review.undecided_policy == AccessReview.UndecidedPolicy.REVOKE:
        for item in undecided:
            if item.assignment.status in (Status.ACTIVE, Status.PENDING):
                _system_revoke(item.assignment, reason=f"access review {review.period} closed without a decision", at=at)
                revoked += 1
    elif undecided:
        raise_alert("access_review_undecided", severity="high",
                    subject=f"{review.name} closed with {len(undecided)} undecided grants",
                    details={"review": review.pk, "items": [i.pk for i in undecided]},
                    team=review.team.slug if review.team_id else "", dedupe_key=f"access_review_undecided:{review.pk}", at=at)
    review.status = AccessReview.Status.CLOSED
    review.closed_at = at
    review.save(update_fields=["status", "closed_at"])
    audit.record("access_review.closed", actor=actor, target=review, team=review.team.slug if review.team_id else "",
                 data=_review_data(review, undecided=len(undecided), revoked=revoked, policy=review.undecided_policy), at=at)
    return review


def _system_revoke(assignment: RoleAssignment, *, reason: str, at: datetime) -> None:
    """Revocation decided by a rule rather than a person (campaign close); audited with no actor."""
    _end_grant(_lock_assignment(assignment), Status.REVOKED, actor=None, reason=reason, at=at, event="role.revoked",
               data={"reason": reason})


def access_reviews_close_overdue(*, at: datetime | None = None, grace: timedelta = timedelta(days=7)) -> int:
    """Close campaigns a week past their due date (the schedule calls this)."""
    from governance.models import AccessReview

    at = at or timezone.now()
    closed = 0
    for review in AccessReview.objects.filter(status=AccessReview.Status.OPEN, due_at__lte=at - grace):
        access_review_close(review=review, at=at)
        closed += 1
    return closed
