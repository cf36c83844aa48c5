"""Access-review reads (RULES.md A1, A2): who reviews each grant and what is recommended.

Building a campaign reads every active grant, so it works in batches: per batch one query for the
grants and one bulk insert; everything else (managers per team, security holders, who holds what
in each team, role duties) is loaded once per campaign. The number of queries grows with batches,
never with grants.
"""
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from governance import conflicts, duties
from governance.models import Environment, Membership, RoleAssignment, RoleDuty
from governance.selectors import duty_assignments

BATCH_SIZE = settings.COUNTERSIGN_REVIEW_BATCH_SIZE
UNUSED_DAYS = getattr(settings, "COUNTERSIGN_UNUSED_DAYS", 90)
INACTIVE_DAYS = getattr(settings, "COUNTERSIGN_INACTIVE_DAYS", 90)


@dataclass
class ReviewContext:
    """What recommendations and reviewer choice need, loaded once per campaign."""

    at: datetime
    managers_by_team: dict[int, list[int]]
    security_ids: list[int]
    holders_by_team_role: Counter
    members_by_team: Counter
    role_duties: dict[int, set[str]]
    production_env_ids: set[int]


def load_context(at: datetime | None = None) -> ReviewContext:
    at = at or timezone.now()
    managers: dict[int, list[int]] = defaultdict(list)
    for team_id, user_id in (
        duty_assignments(duties.MANAGE_ROLES, at=at).order_by("user__username").values_list("team_id", "user_id")
    ):
        if user_id not in managers[team_id]:
            managers[team_id].append(user_id)
    security_ids = list(
        dict.fromkeys(
            duty_assignments(duties.SECURITY_APPROVE, at=at).order_by("user__username").values_list("user_id", flat=True)
        )
    )
    holders = Counter(
        (team_id, role_id)
        for team_id, role_id, _user_id in RoleAssignment.objects.in_force(at)
        .order_by()
        .values_list("team_id", "role_id", "user_id")
        .distinct()
    )
    members = Counter(Membership.objects.values_list("team_id", flat=True))
    role_duties: dict[int, set[str]] = defaultdict(set)
    for role_id, duty in RoleDuty.objects.values_list("role_id", "duty"):
        role_duties[role_id].add(duty)
    production = set(Environment.objects.filter(tier=Environment.Tier.PRODUCTION).values_list("pk", flat=True))
    return ReviewContext(at, dict(managers), security_ids, holders, members, dict(role_duties), production)


def choose_reviewer(ctx: ReviewContext, assignment: RoleAssignment) -> tuple[int | None, bool]:
    """A1: a manager of the grant's team who is not the grantee; else a security-duty holder."""
    for user_id in ctx.managers_by_team.get(assignment.team_id, []):
        if user_id != assignment.user_id:
            return user_id, False
    for user_id in ctx.security_ids:
        if user_id != assignment.user_id:
            return user_id, True
    return None, True


def recommendations(ctx: ReviewContext, assignment: RoleAssignment) -> list[dict]:
    """A2: reasons a reviewer might revoke; the reviewer decides."""
    found = []
    at = ctx.at
    last_use = assignment.last_used_at or assignment.approved_at or assignment.created_at
    if last_use < at - timedelta(days=UNUSED_DAYS):
        found.append({"code": "unused", "message": f"Not exercised for {UNUSED_DAYS}+ days."})
    privileged = conflicts.is_privileged(
        role_is_privileged=assignment.role.is_privileged, role_duties=ctx.role_duties.get(assignment.role_id, ()),
        environment_is_production=(
            None if assignment.environment_id is None else assignment.environment_id in ctx.production_env_ids),
        production_exists=bool(ctx.production_env_ids),
    )
    if privileged and assignment.expires_at is None:
        found.append({"code": "no_expiry", "message": "A privileged grant without an expiry."})
    user = assignment.user
    login = user.last_login or user.date_joined
    if not user.is_active:
        found.append({"code": "inactive_user", "message": "The account is disabled."})
    elif login < at - timedelta(days=INACTIVE_DAYS):
        found.append({"code": "inactive_user", "message": f"No login for {INACTIVE_DAYS}+ days."})
    if assignment.sod_exception_id:
        found.append({"code": "sod_exception", "message": f"Held under SoD exception #{assignment.sod_exception_id}."})
    if ctx.holders_by_team_role[(assignment.team_id, assignment.role_id)] == 1 and ctx.members_by_team[assignment.team_id] > 1:
        found.append({"code": "outlier", "message": "No other member of the team holds this role."})
    return found


def grants_in_batches(*, team_id: int | None, after_id: int, at: datetime, batch_size: int | None = None):
    """Active grants in id order, ``batch_size`` at a time, each batch one query."""
    batch_size = batch_size or BATCH_SIZE
    last = after_id
    while True:
        queryset = (
            RoleAssignment.objects.standing(at).filter(pk__gt=last)
            .select_related("user", "role")
            .order_by("pk")
        )
        if team_id is not None:
            queryset = queryset.filter(team_id=team_id)
        batch = list(queryset[:batch_size])
        if not batch:
            return
        yield batch
        last = batch[-1].pk
