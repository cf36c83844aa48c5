"""Memory stays flat whatever the period: the builder holds one batch, never the population."""
import tracemalloc
from datetime import timedelta

from audit.chain import compute_hash
from compliance.evidence import builder, services as evidence_services
from audit.models import AuditEvent, ChainHead, EvidenceExport


def _append_events(count: int, at) -> None:
    """Many valid chain events fast: bulk inserts with the hashes computed as record() would."""
    head = ChainHead.objects.get(pk=1)
    sequence, prev = head.sequence, head.hash
    rows = []
    for i in range(count):
        sequence += 1
        event = AuditEvent(
            sequence=sequence, created_at=at + timedelta(seconds=i), actor_username="loadgen",
            action="test.load", target_type="releases.changerequest", target_id=str(i),
            target_repr=f"CR-{i}: {'x' * 80}", data={"i": i, "note": "y" * 100}, prev_hash=prev,
        )
        event.hash = compute_hash(event, prev)
        prev = event.hash
        rows.append(event)
        if len(rows) == 2000:
            AuditEvent.objects.bulk_create(rows)
            rows = []
    AuditEvent.objects.bulk_create(rows)
    ChainHead.objects.filter(pk=1).update(sequence=sequence, hash=prev)


def _peak_building(demo, period) -> tuple[int, int]:
    export = evidence_services.export_request(
        actor=demo.auditor, framework="hipaa", period_start=period.start, period_end=period.end
    )
    tracemalloc.start()
    try:
        assert builder.build(export.pk) == EvidenceExport.Status.DONE
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    export.refresh_from_db()
    return peak, export.row_counts["audit_events"]


def test_memory_does_not_grow_with_the_number_of_rows(demo, period, settings):
    settings.EVIDENCE_BATCH_SIZE = 500
    _append_events(2_000, period.middle)
    small_peak, small_rows = _peak_building(demo, period)
    _append_events(18_000, period.middle + timedelta(hours=1))
    large_peak, large_rows = _peak_building(demo, period)

    assert large_rows >= small_rows + 18_000
    # Ten times the rows; the peak (one batch, the ZIP buffers) stays about the same.
    assert large_peak < small_peak * 1.5 + 2_000_000, (small_peak, large_peak)
