"""Security alerts and their resolutions (HIPAA 164.308(a)(1)(ii)(D))."""
from django.db.models import QuerySet

from audit.models import Alert
from compliance.evidence.datasets.base import Context, Dataset, user_name as _user


def _alert_queryset(ctx: Context) -> QuerySet:
    return (
        Alert.objects.filter(ctx.in_period("created_at") | ctx.in_period("resolved_at"))
        .select_related("actor", "resolved_by")
        .order_by("created_at", "pk")
    )


def alert_rows(ctx: Context, batch: list[Alert]) -> list[dict]:
    return [
        {
            "alert_id": a.pk,
            "kind": a.kind,
            "severity": a.severity,
            "status": a.status,
            "subject": a.subject,
            "actor": _user(a.actor),
            "environment": a.environment,
            "team": a.team,
            "created_at": a.created_at,
            "details": a.details,
            "resolution": a.resolution,
            "resolved_by": _user(a.resolved_by),
            "resolved_at": a.resolved_at,
        }
        for a in batch
    ]


ALERTS = Dataset(
    name="alerts",
    title="Security alerts and their resolutions",
    population="Every alert raised (created_at) or resolved (resolved_at) in the period.",
    columns=(
        ("alert_id", "Alert number."),
        ("kind", "What raised it (e.g. off_hours, rubber_stamp, unregistered_deployment, chain_broken)."),
        ("severity", "low, medium, high or critical."),
        ("status", "open or resolved (at export time)."),
        ("subject", "Summary."),
        ("actor", "Whose action raised it."),
        ("environment", "Environment slug."),
        ("team", "Team slug."),
        ("created_at", "When it was raised."),
        ("details", "Details (JSON)."),
        ("resolution", "How it was resolved."),
        ("resolved_by", "Who resolved it."),
        ("resolved_at", "When."),
    ),
    queryset=_alert_queryset,
    rows=alert_rows,
    json_columns=("details",),
    exceptions={"unresolved": lambda r: r["status"] != Alert.Status.RESOLVED},
)


