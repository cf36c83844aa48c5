"""SoD exceptions (RULES.md G3): a documented, time-boxed permission to hold two conflicting
duties, requested by a manager of the user's team, security or a superuser and approved by security
for its environment who is neither its holder nor its requester."""
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from core.errors import Denied, InvalidState, Reason
from governance import conflicts, duties
from governance.models import ConflictRule, Environment, SoDException, Team
from governance.selectors import has_duty, has_duty_for
from governance.services.grants import _is_administrator, max_privileged_lifetime
from core.english import possessive


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
    if conflicts.rule_for_pair(ConflictRule.objects.filter(is_active=True), duty_a, duty_b) is None:
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
        raise Denied(Reason("missing_duty", f"Requesting an exception needs manage_roles in one of {possessive(user.username)} teams."))
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
