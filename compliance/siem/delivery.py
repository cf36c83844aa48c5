"""At-least-once, in-order delivery of the audit trail to each sink (docs/siem.md "Delivery").

A sink's cursor holds the last sequence its receiver acknowledged. One batch is: lock the cursor
(``SELECT … FOR UPDATE SKIP LOCKED``: a second worker skips a sink that is being sent, so two never
interleave), read the next ``batch_size`` events after it in sequence order, send the ones the sink
streams, and move the cursor to the batch's last sequence only once the receiver acknowledged it,
in the same transaction. A failure leaves the cursor where it was and records the error; the next
run (the beat task, every few seconds) sends the same events again, so after an outage delivery
resumes from the last acknowledged sequence. Events are only appended, with sequences that never
skip and commit in order (the chain head is locked until the appending transaction commits), so a
cursor never passes an event it has not sent. Nothing here writes the audit trail: streaming does
not feed itself.
"""
import fnmatch
import time

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from compliance.siem import formats, signatures, transports
from compliance.siem.models import SiemCursor, SiemSink

MAX_BATCHES_PER_RUN = 50  # then the sink yields to the others until the next run
ERROR_LENGTH = 500


def streams(sink: SiemSink, action: str) -> bool:
    patterns = sink.patterns()
    return not patterns or any(fnmatch.fnmatchcase(action, pattern) for pattern in patterns)


def send(sink: SiemSink, events: list[AuditEvent], *, timestamp: int | None = None) -> None:
    """Frame, sign and send one batch; raises ``transports.DeliveryFailed`` unless acknowledged."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    if sink.is_http:
        body = formats.hec_body(sink, events) if sink.transport == SiemSink.Transport.HEC else formats.json_body(sink, events)
        headers = signatures.http_headers(sink, body, timestamp)
        headers["X-Countersign-Sequences"] = f"{events[0].sequence}-{events[-1].sequence}"
        if sink.token:
            scheme = "Splunk" if sink.transport == SiemSink.Transport.HEC else "Bearer"
            headers["Authorization"] = f"{scheme} {sink.token}"
        transports.post(sink, body, headers)
        return
    frames = formats.syslog_frames(sink, events)
    closing = formats.syslog_signature(events[0].sequence, events[-1].sequence, len(events),
                                       signatures.params(sink, frames, timestamp), timezone.now())
    transports.send_syslog(sink, frames + closing)


def _lock(sink_id: int) -> SiemCursor | None:
    SiemCursor.objects.get_or_create(sink_id=sink_id)
    return (SiemCursor.objects.select_for_update(skip_locked=True).select_related("sink")
            .filter(sink_id=sink_id).first())


def one_batch(sink_id: int) -> int | None:
    """Send the next batch of one sink. Returns the events sent (0: a batch the sink streams none
    of, skipped), or None when there is nothing to do (off, caught up, busy elsewhere, or failed)."""
    with transaction.atomic():
        cursor = _lock(sink_id)
        if cursor is None or not cursor.sink.is_active:
            return None
        sink = cursor.sink
        events = list(AuditEvent.objects.filter(sequence__gt=cursor.acknowledged_sequence)
                      .order_by("sequence")[:sink.batch_size])
        if not events:
            return None
        chosen = [event for event in events if streams(sink, event.action)]
        now = timezone.now()
        if chosen:
            cursor.attempted_at = now
            try:
                send(sink, chosen)
            except transports.DeliveryFailed as exc:
                cursor.failures += 1
                cursor.last_error = str(exc)[:ERROR_LENGTH]
                cursor.save(update_fields=["attempted_at", "failures", "last_error"])
                return None
        cursor.acknowledged_sequence = events[-1].sequence
        cursor.acknowledged_at = now
        cursor.failures = 0
        cursor.last_error = ""
        cursor.events_sent += len(chosen)
        cursor.save()
        return len(chosen)


def deliver(sink_id: int, *, max_batches: int = MAX_BATCHES_PER_RUN) -> int:
    """Batches of one sink until it is caught up, fails, or has sent ``max_batches``."""
    sent = 0
    for _ in range(max_batches):
        count = one_batch(sink_id)
        if count is None:
            break
        sent += count
    return sent


def deliver_all(*, max_batches: int = MAX_BATCHES_PER_RUN) -> dict[str, int]:
    """Every active sink in turn (the beat task); a failing sink does not hold up the others."""
    return {sink.name: deliver(sink.pk, max_batches=max_batches)
            for sink in SiemSink.objects.filter(is_active=True).order_by("pk")}
