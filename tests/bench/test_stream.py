"""bench/stream.py (``make bench``'s audit stream lines): events a second the SIEM delivery gets to
a receiver on 127.0.0.1, beside the same bytes written directly; the lines say MISSED below the
target or when the receiver did not get exactly the bytes sent."""
import pytest

from bench import stream
from compliance.siem.models import SiemCursor
from tests.siem.receivers import parse, read_frames

SYSLOG = {"transport": "syslog_tcp", "batches": 200, "bytes": 32_000_000, "exact": True,
          "events_per_second": 5000.0, "floor_events_per_second": 200000.0}
RESULT = {"vendor": "postgresql", "events": 20000, "batch": 100, "rounds": 2, "min_events_per_second": 1000,
          "transports": [SYSLOG, {**SYSLOG, "transport": "https_hec", "events_per_second": 1500.0}]}


def test_the_lines_are_ok_above_the_target_with_every_byte_received():
    lines = stream.lines(RESULT)
    assert [ok for _, ok in lines] == [True, True]
    assert lines[0][0].startswith("audit stream, syslog (RFC 5424) over TCP, to a receiver on 127.0.0.1")
    assert "5,000 events/s, 1600 bytes/event" in lines[0][0] and "ratio 0.025" in lines[0][0]


@pytest.mark.parametrize("change", [{"events_per_second": 999.0}, {"exact": False}])
def test_a_transport_misses(change):
    result = {**RESULT, "transports": [{**SYSLOG, **change}, RESULT["transports"][1]]}
    assert [ok for _, ok in stream.lines(result)] == [False, True]


@pytest.mark.django_db
def test_fifty_events_streamed_to_a_local_syslog_receiver_and_the_same_bytes_replayed():
    stream.fill(50)
    receiver = stream.SyslogReceiver()
    try:
        sink = stream.make_sink("syslog_tcp", receiver.destination(), 20)
        _, batches = stream.deliver(sink)
        assert SiemCursor.objects.get(sink=sink).acknowledged_sequence == 50
        assert len(batches) == 3 and receiver.received == stream.size_of(batches)
        stream.replay(receiver, batches)
        assert receiver.received == 2 * stream.size_of(batches)
    finally:
        receiver.stop()
    frames = [parse(frame) for frame in read_frames(b"".join(batches))]
    events = [f for f in frames if f["sd_id"] == "countersign@32473"]
    assert [int(f["params"]["seq"]) for f in events] == list(range(1, 51))
    assert {f["msgid"] for f in events} == {"change_request.approved"} and len(frames) == 53  # 3 closing messages


@pytest.mark.django_db
@pytest.mark.parametrize("transport", ["syslog_tcp", "https_hec"])
def test_measure_delivers_every_round_exactly(transport):
    stream.fill(50)
    measured = stream.measure(transport, 50, 20, 2)
    assert measured["exact"] and measured["batches"] == 3 and measured["bytes"] > 50 * 500
    assert measured["events_per_second"] > 0 and measured["floor_events_per_second"] > 0
