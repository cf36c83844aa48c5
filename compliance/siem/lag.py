"""How far behind each sink is (``/healthz`` details and the admin's list): the events the trail
holds past its cursor (head sequence − acknowledged sequence) and how long the oldest of them has
waited. A fixed number of queries per sink: the chain head, and the event right after the cursor."""
from django.utils import timezone

from audit.models import AuditEvent, ChainHead
from compliance.siem.models import SiemSink


def head_sequence() -> int:
    return ChainHead.objects.filter(pk=1).values_list("sequence", flat=True).first() or 0


def of(sink: SiemSink, head: int, *, now=None) -> dict:
    now = now or timezone.now()
    cursor = getattr(sink, "cursor", None) if sink.pk else None
    acknowledged = cursor.acknowledged_sequence if cursor is not None else 0
    behind = max(head - acknowledged, 0)
    oldest = None
    if behind:
        oldest = AuditEvent.objects.filter(sequence__gt=acknowledged).order_by("sequence").values_list(
            "created_at", flat=True).first()
    return {
        "sink": sink.name,
        "active": sink.is_active,
        "head_sequence": head,
        "acknowledged_sequence": acknowledged,
        "lag_events": behind,
        "oldest_unsent_age_seconds": round((now - oldest).total_seconds(), 3) if oldest else 0,
        "failures": cursor.failures if cursor is not None else 0,
        "last_acknowledged_at": cursor.acknowledged_at.isoformat() if cursor is not None and cursor.acknowledged_at else None,
    }


def all_sinks() -> list[dict]:
    sinks = list(SiemSink.objects.select_related("cursor").order_by("name"))
    if not sinks:
        return []
    head, now = head_sequence(), timezone.now()
    return [of(sink, head, now=now) for sink in sinks]
