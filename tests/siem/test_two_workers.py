"""Two workers streaming at once (beat runs overlapping, or two Celery workers) never interleave one
sink's batches: each batch locks the sink's cursor, and the other worker skips the sink while it is
locked. Needs real concurrent transactions: PostgreSQL, committed data, one connection per thread."""
import pytest

from audit.models import AuditEvent
from compliance.siem import delivery
from compliance.siem.models import SiemCursor, SiemSink
from governance.controls.services import control_change
from tests.releases.racing import at_the_same_moment
from tests.siem import verify
from tests.siem.receivers import Collector

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_workers_at_once_send_each_batch_once_and_in_order(demo):
    collector = Collector().start()
    collector.delay = 0.2  # each batch holds its lock a while
    sink = SiemSink.objects.get(pk=control_change(actor=demo.admin, kind="compliance.siemsink", values={
        "name": "Splunk", "transport": "https_hec", "destination": collector.url("/services/collector/event"),
        "token": "t", "batch_size": 20}).target_id)

    outcomes = at_the_same_moment(*(lambda: delivery.deliver(sink.pk),) * 2)
    while SiemCursor.objects.get(sink=sink).acknowledged_sequence < AuditEvent.objects.count():
        delivery.deliver(sink.pk)
    collector.stop()

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    batches = [verify.hec_sequences(body) for _, body, _ in collector.requests]
    sent = [s for batch in batches for s in batch]
    assert sent == list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))  # no repeat
