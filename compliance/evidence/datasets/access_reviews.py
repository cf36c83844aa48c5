"""Access review campaigns and decisions (SOX ITGC-AC, HIPAA 164.308(a)(4), ISO A.5.18)."""
from django.db.models import Q, QuerySet

from compliance.evidence.datasets.base import Context, Dataset
from compliance.evidence.writer import iso
from governance.models import AccessReviewItem


REVIEW_FIELDS = (
    "review_id", "review__name", "review__period", "review__team_id", "review__team__slug", "review__status",
    "review__created_at", "review__due_at", "review__closed_at", "review__undecided_policy", "pk", "assignment_id",
    "assignment__user_id", "assignment__user__username", "assignment__role__slug", "assignment__team__slug",
    "assignment__environment_id", "assignment__environment__slug", "assignment__status", "reviewer__username",
    "reviewer_is_security", "recommendations", "due_at", "decision", "decided_by_id", "decided_by__username",
    "decided_at", "comment", "escalated_at",
)


def _review_queryset(ctx: Context) -> QuerySet:
    return (
        AccessReviewItem.objects.filter(review__created_at__lt=ctx.end)
        .filter(Q(review__closed_at__isnull=True) | Q(review__closed_at__gte=ctx.start))
        .order_by("review__created_at", "review_id", "pk")
        .values_list(*REVIEW_FIELDS)
    )


def review_rows(ctx: Context, batch: list[tuple]) -> list[dict]:
    rows = []
    now = ctx.generated_at
    for (
        review_id, name, review_period, team_id, team, review_status, review_created_at, review_due_at,
        review_closed_at, undecided_policy, pk, grant_id, grantee_id, grantee, role, grant_team, environment_id,
        environment, grant_status, reviewer, reviewer_is_security, recommendations, due_at, decision,
        decided_by_id, decided_by, decided_at, comment, escalated_at,
    ) in batch:
        findings = []
        if not decision:
            if due_at < now:
                findings.append("undecided_past_due")
        elif decided_at and decided_at > due_at:
            findings.append("decided_late")
        if decided_by_id is not None and decided_by_id == grantee_id:
            findings.append("grantee_decided_own_grant")
        rows.append({
            "campaign_id": review_id,
            "campaign": name,
            "campaign_period": review_period,
            "campaign_team": team if team_id else "all",
            "campaign_status": review_status,
            "campaign_started_at": iso(review_created_at),
            "campaign_due_at": iso(review_due_at),
            "campaign_closed_at": iso(review_closed_at),
            "undecided_policy": undecided_policy,
            "item_id": pk,
            "grant_id": grant_id,
            "grantee": grantee,
            "role": role,
            "team": grant_team,
            "environment": environment if environment_id is not None else "all",
            "grant_status": grant_status,
            "reviewer": reviewer,
            "reviewer_is_security": reviewer_is_security,
            "recommendations": [r.get("code", str(r)) if isinstance(r, dict) else str(r) for r in recommendations or []],
            "item_due_at": iso(due_at),
            "decision": decision,
            "decided_by": decided_by,
            "decided_at": iso(decided_at),
            "comment": comment,
            "escalated_at": iso(escalated_at),
            "findings": findings,
        })
    return rows


ACCESS_REVIEWS = Dataset(
    name="access_reviews",
    title="Access review campaigns and decisions",
    population="Every item (one per grant reviewed) of every access review campaign open at some time in the "
               "period: started before the period ends and not closed before it starts.",
    columns=(
        ("campaign_id", "Campaign number."),
        ("campaign", "Campaign name."),
        ("campaign_period", "The period the campaign covers (e.g. 2026-Q1)."),
        ("campaign_team", "Team reviewed, or all."),
        ("campaign_status", "building, open or closed (at export time)."),
        ("campaign_started_at", "When the campaign started."),
        ("campaign_due_at", "When decisions were due."),
        ("campaign_closed_at", "When it closed."),
        ("undecided_policy", "What happens to undecided grants at close: revoke or escalate."),
        ("item_id", "Review item number."),
        ("grant_id", "The role assignment reviewed."),
        ("grantee", "Who holds it."),
        ("role", "Role slug."),
        ("team", "Team it is held in."),
        ("environment", "Environment slug, or all."),
        ("grant_status", "The grant's status at export time."),
        ("reviewer", "Who was asked to decide."),
        ("reviewer_is_security", "Security reviewed it because no manager other than the grantee could."),
        ("recommendations", "unused, no_expiry, inactive_user, sod_exception, outlier."),
        ("item_due_at", "When the decision was due."),
        ("decision", "keep, revoke, or empty (undecided)."),
        ("decided_by", "Who decided."),
        ("decided_at", "When."),
        ("comment", "The reviewer's comment."),
        ("escalated_at", "When an undecided item was escalated."),
        ("findings", "undecided_past_due, decided_late, grantee_decided_own_grant."),
    ),
    queryset=_review_queryset,
    rows=review_rows,
    exceptions={"review_findings": lambda r: bool(r["findings"])},
)


