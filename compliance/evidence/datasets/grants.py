"""Role grants and revocations (SOX ITGC-AC, HIPAA 164.308(a)(4), ISO A.5.18): the population and its rows."""
from django.db.models import QuerySet

from compliance.evidence.datasets.base import Context, Dataset
from compliance.evidence.writer import iso
from governance.models import RoleAssignment


GRANT_FIELDS = (
    "pk", "user_id", "user__username", "user__is_active", "role_id", "role__slug", "team__slug", "environment_id",
    "environment__slug", "status", "justification", "requested_by_id", "requested_by__username", "created_at",
    "approved_by_id", "approved_by__username", "approved_at", "expires_at", "ended_at", "ended_by__username",
    "end_reason", "sod_exception_id",
)


def _grant_queryset(ctx: Context) -> QuerySet:
    return (
        RoleAssignment.objects.filter(ctx.in_period("created_at") | ctx.in_period("approved_at") | ctx.in_period("ended_at"))
        .order_by("created_at", "pk")
        .values_list(*GRANT_FIELDS)
    )


def _privileged(ctx: Context, role_id: int, environment_id: int | None) -> bool:
    privileged, environment_duty = ctx.roles.get(role_id, (False, False))
    if privileged:
        return True
    if not environment_duty:
        return False
    return environment_id in ctx.production_environments if environment_id else ctx.has_production


OPEN_STATUSES = (RoleAssignment.Status.ACTIVE, RoleAssignment.Status.PENDING)


def grant_rows(ctx: Context, batch: list[tuple]) -> list[dict]:
    rows = []
    start, end = ctx.start, ctx.end
    for (
        pk, user_id, username, user_active, role_id, role, team, environment_id, environment, status,
        justification, requested_by_id, requested_by, created_at, approved_by_id, approved_by, approved_at,
        expires_at, ended_at, ended_by, end_reason, sod_exception_id,
    ) in batch:
        privileged = _privileged(ctx, role_id, environment_id)
        activity = [
            name for name, at in (("requested", created_at), ("approved", approved_at), ("ended", ended_at))
            if at is not None and start <= at < end
        ]
        findings = []
        if requested_by_id is None:
            findings.append("no_requester (bootstrapped grant)")
        elif requested_by_id == user_id:
            findings.append("self_granted")
        if approved_by_id is not None and approved_by_id in (user_id, requested_by_id):
            findings.append("approver_not_independent")
        if privileged and approved_at is not None and approved_by_id is None:
            findings.append("privileged_without_second_approver")
        if privileged and expires_at is None and status in OPEN_STATUSES:
            findings.append("privileged_without_expiry")
        rows.append({
            "grant_id": pk,
            "grantee": username,
            "grantee_active": user_active,
            "role": role,
            "privileged": privileged,
            "team": team,
            "environment": environment if environment_id is not None else "all",
            "status": status,
            "justification": justification,
            "requested_by": requested_by,
            "requested_at": iso(created_at),
            "approved_by": approved_by,
            "approved_at": iso(approved_at),
            "expires_at": iso(expires_at),
            "ended_at": iso(ended_at),
            "ended_by": ended_by,
            "end_reason": end_reason,
            "sod_exception_id": sod_exception_id,
            "activity_in_period": activity,
            "findings": findings,
        })
    return rows


ROLE_GRANTS = Dataset(
    name="role_grants",
    title="Role grants and revocations",
    population="Every role assignment requested (created_at), approved (approved_at) or ended — revoked, "
               "rejected or expired — (ended_at) in the period.",
    columns=(
        ("grant_id", "Role assignment number."),
        ("grantee", "Who holds (or asked for) the role."),
        ("grantee_active", "Whether the grantee's account is enabled at export time."),
        ("role", "Role slug."),
        ("privileged", "A duty on production, or the security or manager role (needs four eyes and an expiry)."),
        ("team", "Team the grant is held in."),
        ("environment", "Environment slug, or all."),
        ("status", "pending, active, rejected, revoked or expired (at export time)."),
        ("justification", "Why it was asked for."),
        ("requested_by", "Who requested it (empty: bootstrapped at installation)."),
        ("requested_at", "When it was requested."),
        ("approved_by", "Second approver of a privileged grant (empty when none was needed)."),
        ("approved_at", "When it came into force."),
        ("expires_at", "When it expires."),
        ("ended_at", "When it was revoked, rejected or expired."),
        ("ended_by", "Who ended it (empty: the system)."),
        ("end_reason", "Why it ended."),
        ("sod_exception_id", "The SoD exception it is held under, if any."),
        ("activity_in_period", "Which of requested / approved / ended happened in the period."),
        ("findings", "self_granted, approver_not_independent, privileged_without_second_approver, "
                     "privileged_without_expiry, no_requester."),
    ),
    queryset=_grant_queryset,
    rows=grant_rows,
    exceptions={"grant_findings": lambda r: bool(r["findings"])},
)


