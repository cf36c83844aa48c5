"""The daily permission-creep scan (RULES.md A4). It reads every active grant and raises alerts
through the audit core; each finding has a stable dedupe key, so a daily run does not pile up
duplicates of an alert nobody has resolved yet."""
from collections import defaultdict
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from guardian.models import UserObjectPermission

from audit.alerts import raise_alert
from governance import conflicts, duties
from governance.models import ConflictRule, Environment, RoleAssignment, RoleDuty, SoDException
from governance.permissions import DUTY_CODENAMES, drift

DORMANT_DAYS = 90


def _users_with_duty_permissions():
    """Everyone who holds a duty permission or has ever had a grant."""
    holders = UserObjectPermission.objects.filter(permission__codename__in=DUTY_CODENAMES).values("user_id")
    global_holders = get_user_model().user_permissions.through.objects.filter(
        permission__codename__in=DUTY_CODENAMES
    ).values("user_id")
    return get_user_model().objects.filter(
        Q(pk__in=holders) | Q(pk__in=global_holders) | Q(pk__in=RoleAssignment.objects.values("user_id"))
    )


def scan_drift(at: datetime) -> int:
    """Guardian permissions no active assignment explains (someone wrote them by hand)."""
    raised = 0
    for user in _users_with_duty_permissions():
        found = drift(user, at=at)
        if found["unexplained"]:
            perms = sorted(f"{code}:{pk}" for code, pk in found["unexplained"])
            _, created = raise_alert(
                "permission_drift", severity="high", actor=user,
                subject=f"{user.username} holds permissions no grant explains",
                details={"user": user.username, "unexplained": perms, "missing": sorted(f"{c}:{p}" for c, p in found["missing"])},
                dedupe_key=f"permission_drift:{user.pk}", at=at,
            )
            raised += created
    return raised


def scan_expired_active(at: datetime) -> int:
    """Grants past their expiry that the expiry task has not ended yet."""
    raised = 0
    for assignment in RoleAssignment.objects.filter(
        status=RoleAssignment.Status.ACTIVE, expires_at__lte=at - timedelta(minutes=30)
    ).select_related("user", "role", "team"):
        _, created = raise_alert(
            "expired_grant_active", severity="high", actor=assignment.user, team=assignment.team.slug,
            subject=f"Grant #{assignment.pk} expired {assignment.expires_at:%Y-%m-%d %H:%M} but is still active",
            details={"assignment": assignment.pk}, dedupe_key=f"expired_grant_active:{assignment.pk}", at=at,
        )
        raised += created
    return raised


def scan_conflicts(at: datetime) -> int:
    """Users holding duties a conflict rule forbids together, e.g. under a rule added after the grants."""
    rules = list(ConflictRule.objects.filter(is_active=True))
    if not rules:
        return 0
    environments = {e.pk: e for e in Environment.objects.all()}
    role_duties = defaultdict(set)
    for role_id, duty in RoleDuty.objects.values_list("role_id", "duty"):
        role_duties[role_id].add(duty)
    held = defaultdict(lambda: defaultdict(set))  # user -> environment -> duties
    exceptions = defaultdict(list)
    for exception in SoDException.objects.active(at):
        exceptions[exception.user_id].append(exception)
    names = {}
    for assignment in RoleAssignment.objects.in_force(at).select_related("user"):
        names[assignment.user_id] = assignment.user
        targets = [assignment.environment_id] if assignment.environment_id else list(environments)
        for env_id in targets:
            held[assignment.user_id][env_id] |= role_duties[assignment.role_id] & set(duties.ENVIRONMENT_DUTIES)
    raised = 0
    for user_id, by_env in held.items():
        found = conflicts.held_conflicts(
            duties_by_environment={environments[env_id]: held_duties for env_id, held_duties in by_env.items()},
            rules=rules, exceptions=exceptions[user_id], at=at,
        )
        for rule, env in found:
            _, created = raise_alert(
                "sod_conflict_held", severity="critical", actor=names[user_id], environment=env.slug,
                subject=f"{names[user_id].username} holds {rule.duty_a} and {rule.duty_b} for {env.slug}",
                details={"user": names[user_id].username, "rule": rule.pk, "environment": env.slug},
                dedupe_key=f"sod_conflict_held:{user_id}:{rule.pk}:{env.pk}", at=at,
            )
            raised += created
    return raised


def scan_dormant(at: datetime, days: int = DORMANT_DAYS) -> int:
    """Active grants not exercised for ``days``."""
    raised = 0
    cutoff = at - timedelta(days=days)
    dormant = RoleAssignment.objects.in_force(at).filter(
        created_at__lte=cutoff
    ).exclude(last_used_at__gt=cutoff).select_related("user", "role", "team")
    for assignment in dormant:
        _, created = raise_alert(
            "dormant_grant", severity="low", actor=assignment.user, team=assignment.team.slug,
            subject=f"Grant #{assignment.pk} ({assignment.role.slug}) unused for {days}+ days",
            details={"assignment": assignment.pk, "last_used_at": assignment.last_used_at},
            dedupe_key=f"dormant_grant:{assignment.pk}", at=at,
        )
        raised += created
    return raised


def creep_scan(*, at: datetime | None = None) -> dict[str, int]:
    at = at or timezone.now()
    return {
        "drift": scan_drift(at),
        "expired_active": scan_expired_active(at),
        "conflicts": scan_conflicts(at),
        "dormant": scan_dormant(at),
    }
