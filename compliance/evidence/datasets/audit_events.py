"""The audit event extract (HIPAA 164.312(b), 164.308(a)(1)(ii)(D))."""
from django.db.models import QuerySet

from audit.models import AuditEvent
from compliance.evidence.datasets.base import Context, Dataset


AUDIT_EVENT_FIELDS = (
    "sequence", "created_at", "actor_id", "actor_username", "action", "target_type", "target_id", "target_repr",
    "environment", "team", "ip", "user_agent", "request_id", "data", "prev_hash", "hash",
)


def _event_queryset(ctx: Context) -> QuerySet:
    return (
        AuditEvent.objects.filter(ctx.in_period("created_at"), sequence__lte=ctx.head_sequence)
        .order_by("sequence")
        .values_list(*AUDIT_EVENT_FIELDS)
    )


def event_rows(ctx: Context, batch: list[tuple]) -> list[tuple]:
    # Plain tuples in column order (values_list): a million events must build neither a million
    # model instances nor a million dicts.
    return batch


AUDIT_EVENTS = Dataset(
    name="audit_events",
    title="Audit event extract",
    population="Every audit event whose created_at is in the period, up to the chain head read when the export "
               "started (events appended while it runs belong to the next export). Each row carries prev_hash "
               "and hash, so the extract can be checked against the chain and the sealed head.",
    columns=(
        ("sequence", "Position in the hash chain."),
        ("created_at", "When it happened (UTC)."),
        ("actor_id", "User id of the actor (empty: the system)."),
        ("actor_username", "Username of the actor at the time."),
        ("action", "Action code, e.g. deployment.started."),
        ("target_type", "Kind of object acted on."),
        ("target_id", "Its id."),
        ("target_repr", "Its description at the time."),
        ("environment", "Environment slug."),
        ("team", "Team slug."),
        ("ip", "Client IP address."),
        ("user_agent", "Client user agent."),
        ("request_id", "Request id (correlates with server logs)."),
        ("data", "The event's details (JSON)."),
        ("prev_hash", "Hash of the previous event."),
        ("hash", "sha256(canonical event + prev_hash)."),
    ),
    queryset=_event_queryset,
    rows=event_rows,
    json_columns=("data",),
)


