"""E1: pending changes waiting past their environment's review SLA remind the eligible reviewers
(the team's on-call reviewers first), and past twice the SLA escalate to the team's managers.
C10: emergency changes whose post-implementation review is overdue raise an alert. Each step
happens once per change and is recorded as an audit event."""
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import audit
from audit.alerts import raise_alert
from audit.notifications import notify
from governance import duties
from governance.selectors import duty_holders
from releases import states
from releases.models import ChangeRequest

DEFAULT_SLA_MINUTES = 240


def _sla(cr: ChangeRequest) -> timedelta:
    policy = getattr(cr.environment, "approval_policy", None)
    return timedelta(minutes=policy.review_sla_minutes if policy else DEFAULT_SLA_MINUTES)


def eligible_reviewers(cr: ChangeRequest, at: datetime) -> list:
    """Approve-duty holders for the environment who may decide this change, on-call first."""
    excluded = {cr.author_id, *cr.contributor_history.values_list("user_id", flat=True)}  # any revision
    holders = list(
        duty_holders(duties.APPROVE, environment=cr.environment, at=at)
        .filter(memberships__team_id=cr.team_id)
        .exclude(pk__in=excluded)
    )
    on_call = set(cr.team.on_call_reviewers.values_list("pk", flat=True))
    first = [u for u in holders if u.pk in on_call]
    return first or holders


def _remind(cr: ChangeRequest, at: datetime) -> None:
    reviewers = eligible_reviewers(cr, at)
    names = [u.username for u in reviewers]
    audit.record("change_request.reminded", target=cr, environment=cr.environment.slug, team=cr.team.slug,
                 data={"change_request": cr.pk, "to": names, "waiting_since": cr.submitted_at}, at=at)
    notify("escalation", subject=f"CR-{cr.pk} awaits review: {cr.title}", team=cr.team.slug,
           body=f"{cr.title} has waited for review since {cr.submitted_at:%Y-%m-%d %H:%M} UTC.",
           recipients=[u.email for u in reviewers], data={"change_request": cr.pk, "level": "reminder"})


def _escalate(cr: ChangeRequest, at: datetime) -> None:
    managers = list(duty_holders(duties.MANAGE_ROLES, team=cr.team, at=at))
    audit.record("change_request.escalated", target=cr, environment=cr.environment.slug, team=cr.team.slug,
                 data={"change_request": cr.pk, "to": [u.username for u in managers], "waiting_since": cr.submitted_at},
                 at=at)
    notify("escalation", subject=f"Escalated: CR-{cr.pk} has no decision after twice its SLA", team=cr.team.slug,
           body=f"{cr.title} has waited since {cr.submitted_at:%Y-%m-%d %H:%M} UTC.",
           recipients=[u.email for u in managers], data={"change_request": cr.pk, "level": "managers"})


def escalate_stalled(*, at: datetime | None = None) -> dict[str, int]:
    at = at or timezone.now()
    counts = {"reminded": 0, "escalated": 0}
    pending = ChangeRequest.objects.filter(state__in=states.starts("approve"), escalated_at__isnull=True).select_related(
        "environment__approval_policy", "team"
    )
    for cr in pending:
        waited = at - cr.submitted_at
        sla = _sla(cr)
        with transaction.atomic():
            if waited >= 2 * sla:
                if ChangeRequest.objects.filter(pk=cr.pk, escalated_at__isnull=True).update(escalated_at=at):
                    _escalate(cr, at)
                    counts["escalated"] += 1
            elif waited >= sla and cr.reminded_at is None:
                if ChangeRequest.objects.filter(pk=cr.pk, reminded_at__isnull=True).update(reminded_at=at):
                    _remind(cr, at)
                    counts["reminded"] += 1
    return counts


def pir_overdue_scan(*, at: datetime | None = None) -> int:
    at = at or timezone.now()
    raised = 0
    overdue = ChangeRequest.objects.filter(
        Q(pir_due_at__lte=at), pir_at__isnull=True, pir_alerted_at__isnull=True
    ).select_related("environment", "team")
    for cr in overdue:
        with transaction.atomic():
            if ChangeRequest.objects.filter(pk=cr.pk, pir_alerted_at__isnull=True).update(pir_alerted_at=at):
                raise_alert("pir_overdue", severity="high", environment=cr.environment.slug, team=cr.team.slug,
                            subject=f"Post-implementation review of emergency CR-{cr.pk} is overdue",
                            details={"change_request": cr.pk, "due_at": cr.pir_due_at},
                            dedupe_key=f"pir_overdue:{cr.pk}", at=at)
                raised += 1
    return raised
