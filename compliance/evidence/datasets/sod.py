"""Conflict rules and SoD exceptions (ISO A.5.3)."""
from django.db.models import Prefetch, QuerySet

from compliance.evidence.datasets.base import Context, Dataset, environment_name as _environment_name, user_name as _user
from governance.models import ConflictRule, RoleAssignment, SoDException


CONFLICT_RULES = Dataset(
    name="conflict_rules",
    title="Segregation-of-duties conflict rules",
    population="Every conflict rule as configured at export time (active or not); their edit history is in the "
               "audit events (conflict_rule.*).",
    columns=(
        ("rule_id", "Rule number."),
        ("duty_a", "First duty."),
        ("duty_b", "Second duty, not to be held with the first for the same environment."),
        ("tier", "Environment tier it applies to (empty: every tier)."),
        ("description", "Why."),
        ("is_active", "Whether grants are checked against it."),
    ),
    queryset=lambda ctx: ConflictRule.objects.order_by("pk"),
    rows=lambda ctx, batch: [
        {"rule_id": r.pk, "duty_a": r.duty_a, "duty_b": r.duty_b, "tier": r.tier, "description": r.description,
         "is_active": r.is_active}
        for r in batch
    ],
)


def _exception_queryset(ctx: Context) -> QuerySet:
    return (
        SoDException.objects.filter(created_at__lt=ctx.end, expires_at__gte=ctx.start)
        .select_related("user", "environment", "requested_by", "approved_by")
        .prefetch_related(Prefetch("assignments", queryset=RoleAssignment.objects.only("pk", "sod_exception_id")))
        .order_by("created_at", "pk")
    )


def exception_rows(ctx: Context, batch: list[SoDException]) -> list[dict]:
    rows = []
    for e in batch:
        findings = []
        if e.approved_by_id is not None and e.approved_by_id in (e.user_id, e.requested_by_id):
            findings.append("approver_not_independent")
        if e.status == SoDException.Status.ACTIVE and e.approved_by_id is None:
            findings.append("active_without_approver")
        rows.append({
            "exception_id": e.pk,
            "user": e.user.username,
            "duty_a": e.duty_a,
            "duty_b": e.duty_b,
            "environment": _environment_name(e.environment),
            "status": e.status,
            "justification": e.justification,
            "requested_by": _user(e.requested_by),
            "requested_at": e.created_at,
            "approved_by": _user(e.approved_by),
            "approved_at": e.approved_at,
            "expires_at": e.expires_at,
            "grants": sorted(a.pk for a in e.assignments.all()),
            "findings": findings,
        })
    return rows


SOD_EXCEPTIONS = Dataset(
    name="sod_exceptions",
    title="SoD exceptions",
    population="Every SoD exception requested before the period ends and expiring at or after its start "
               "(whatever its status).",
    columns=(
        ("exception_id", "Exception number."),
        ("user", "Who may hold both duties."),
        ("duty_a", "First duty."),
        ("duty_b", "Second duty."),
        ("environment", "Environment slug, or all."),
        ("status", "pending, active, rejected or revoked (at export time)."),
        ("justification", "Why."),
        ("requested_by", "Who asked for it."),
        ("requested_at", "When."),
        ("approved_by", "The security-duty holder who approved it."),
        ("approved_at", "When."),
        ("expires_at", "When it ends."),
        ("grants", "Role assignments held under it."),
        ("findings", "approver_not_independent, active_without_approver."),
    ),
    queryset=_exception_queryset,
    rows=exception_rows,
    exceptions={"exception_findings": lambda r: bool(r["findings"])},
)


