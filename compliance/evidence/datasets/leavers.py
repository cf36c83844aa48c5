"""Leavers (SOX ITGC-AC): deactivated accounts and the end of their grants."""
from django.db.models import Q, QuerySet

from compliance.evidence.datasets.base import Context, Dataset
from compliance.evidence.datasets.grants import OPEN_STATUSES
from compliance.evidence.writer import iso
from governance.models import RoleAssignment


LEAVER_FIELDS = (
    "user__username", "user__email", "user__last_login", "user__date_joined", "pk", "role__slug", "team__slug",
    "environment_id", "environment__slug", "status", "approved_at", "created_at", "expires_at", "ended_at",
    "ended_by__username", "end_reason",
)


def _leaver_queryset(ctx: Context) -> QuerySet:
    return (
        RoleAssignment.objects.filter(user__is_active=False, created_at__lt=ctx.end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=ctx.start))
        .order_by("user__username", "pk")
        .values_list(*LEAVER_FIELDS)
    )


def leaver_rows(ctx: Context, batch: list[tuple]) -> list[dict]:
    rows = []
    for (
        username, email, last_login, date_joined, pk, role, team, environment_id, environment, status, approved_at,
        created_at, expires_at, ended_at, ended_by, end_reason,
    ) in batch:
        open_grant = ended_at is None and status in OPEN_STATUSES
        rows.append({
            "user": username,
            "email": email,
            "last_login": iso(last_login),
            "date_joined": iso(date_joined),
            "grant_id": pk,
            "role": role,
            "team": team,
            "environment": environment if environment_id is not None else "all",
            "grant_status": status,
            "granted_at": iso(approved_at or created_at),
            "expires_at": iso(expires_at),
            "grant_ended_at": iso(ended_at),
            "ended_by": ended_by,
            "end_reason": end_reason,
            "findings": ["grant_not_ended"] if open_grant else [],
        })
    return rows


LEAVERS = Dataset(
    name="leavers",
    title="Leavers (deactivated accounts) and the end of their grants",
    population="Every role assignment of an account that is deactivated at export time and that was in force "
               "or pending at some time in the period (created before the period ends, not ended before it "
               "starts). The user model records no deactivation time; last_login is given instead. A "
               "deactivated account holds no duty whatever its grants say (every check reads is_active), "
               "but a grant left open is reported as a finding.",
    columns=(
        ("user", "The deactivated account."),
        ("email", "Its e-mail address."),
        ("last_login", "Its last login."),
        ("date_joined", "When the account was created."),
        ("grant_id", "Role assignment number."),
        ("role", "Role slug."),
        ("team", "Team it was held in."),
        ("environment", "Environment slug, or all."),
        ("grant_status", "Status at export time."),
        ("granted_at", "When it came into force."),
        ("expires_at", "When it expires."),
        ("grant_ended_at", "When the grant ended (revoked, rejected or expired)."),
        ("ended_by", "Who ended it (empty: the system)."),
        ("end_reason", "Why."),
        ("findings", "grant_not_ended: the grant is still active or pending."),
    ),
    queryset=_leaver_queryset,
    rows=leaver_rows,
    exceptions={"grant_not_ended": lambda r: bool(r["findings"])},
)


