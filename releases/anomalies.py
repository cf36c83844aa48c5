"""Security signals about people's actions on changes (RULES.md E2).

Immediate signals (rubber stamp, off-hours, new IP) are checked by the services right after the
action, inside its transaction; signals that need history (reciprocal approvals) come from a
scheduled scan. All of them raise through ``audit.alerts.raise_alert``.
"""
from collections import Counter
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists
from django.utils import timezone

from audit import context
from audit.alerts import raise_alert
from audit.models import AuditEvent
from releases.models import Approval, ChangeRequest
from core.english import possessive
from core.shapes import Shape

RUBBER_STAMP_SECONDS = 60
RECIPROCAL_THRESHOLD = getattr(settings, "COUNTERSIGN_RECIPROCAL_THRESHOLD", 3)
RECIPROCAL_WINDOW = timedelta(days=30)
WORK_START, WORK_END = time(7, 0), time(20, 0)  # weekdays, in the team's time zone


def is_off_hours(at: datetime, time_zone: str) -> bool:
    local = at.astimezone(ZoneInfo(time_zone or "UTC"))
    return local.isoweekday() > 5 or not (WORK_START <= local.time() < WORK_END)


def _seen_from(user_id, ip):
    seen = AuditEvent.objects.filter(actor_id=user_id).exclude(ip__isnull=True)
    return (get_user_model().objects.filter(pk=user_id)
            .annotate(has_history=Exists(seen), seen_here=Exists(seen.filter(ip=ip)))
            .values_list("has_history", "seen_here"))


# Whether the actor acted from any recorded IP before, and from this one: one round trip for both
# questions, compiled once (core.shapes), as every approval and deployment asks it.
_SEEN_FROM = Shape(_seen_from, user_id=int, ip=AuditEvent._meta.get_field("ip"))


def check_privileged_action(*, actor, action: str, cr: ChangeRequest, at: datetime, seen_from=None) -> None:
    """Off-hours and new-IP checks for approvals and deployments. ``seen_from``: ``(ip,
    has_history, seen_here)`` as the decision's locked read answered them (``reads.change``);
    asked here otherwise, or when they were asked of another address."""
    if actor is None:
        return
    if is_off_hours(at, cr.team.time_zone):
        raise_alert(
            "off_hours", severity="medium", actor=actor, environment=cr.environment.slug, team=cr.team.slug,
            subject=f"{actor.username}: {action} of CR-{cr.pk} outside {possessive(cr.team.slug)} working hours",
            details={"change_request": cr.pk, "action": action, "local_time_zone": cr.team.time_zone},
            at=at,
        )
    ip = context.current().ip
    if ip:
        if seen_from is not None and seen_from[0] == ip:
            has_history, seen_here = seen_from[1:]
        else:
            has_history, seen_here = (bool(fact) for fact in _SEEN_FROM.rows(user_id=actor.pk, ip=ip)[0])
        if has_history and not seen_here:
            raise_alert(
                "new_ip", severity="medium", actor=actor, environment=cr.environment.slug, team=cr.team.slug,
                subject=f"{actor.username}: {action} of CR-{cr.pk} from an IP never seen for them ({ip})",
                details={"change_request": cr.pk, "action": action, "ip": ip},
                dedupe_key=f"new_ip:{actor.pk}:{ip}", at=at,
            )


def check_rubber_stamp(*, approval: Approval, cr: ChangeRequest) -> None:
    if approval.via == Approval.Via.AUTO or cr.submitted_at is None:
        return
    seconds = (approval.created_at - cr.submitted_at).total_seconds()
    if seconds < RUBBER_STAMP_SECONDS:
        raise_alert(
            "rubber_stamp", severity="medium", actor=approval.reviewer, environment=cr.environment.slug,
            team=cr.team.slug,
            subject=f"{approval.reviewer.username} approved CR-{cr.pk} {int(seconds)} s after it was submitted",
            details={"change_request": cr.pk, "seconds": round(seconds, 1)},
            dedupe_key=f"rubber_stamp:{approval.pk}", at=approval.created_at,
        )


def reciprocal_scan(*, at: datetime | None = None, threshold: int = RECIPROCAL_THRESHOLD) -> int:
    """Pairs who approve each other's changes more than ``threshold`` times each in 30 days."""
    at = at or timezone.now()
    pairs = Counter(
        Approval.objects.filter(
            decision=Approval.Decision.APPROVED, reviewer__isnull=False, created_at__gt=at - RECIPROCAL_WINDOW,
            created_at__lte=at,
        ).values_list("reviewer__username", "change_request__author__username")
    )
    raised = 0
    for (a, b), count in pairs.items():
        back = pairs.get((b, a), 0)
        if a < b and count > threshold and back > threshold:
            _, created = raise_alert(
                "reciprocal_approvals", severity="high",
                subject=f"{a} and {b} approved each other's changes {count} and {back} times in 30 days",
                details={"pair": [a, b], "a_approved_b": count, "b_approved_a": back},
                dedupe_key=f"reciprocal:{a}:{b}", at=at,
            )
            raised += created
    return raised
