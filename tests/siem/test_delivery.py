"""Issue 19: the audit trail streamed to a SIEM, at least once, in order, resuming after an outage.

An HTTP collector (Splunk HEC and generic JSON) and a syslog receiver (TCP, and TLS with a
certificate made here) run on 127.0.0.1. Each is stopped while events are appended and started
again: afterwards every event of the trail has arrived, de-duplicated by sequence exactly once, in
increasing order per sink, and every batch's signature verifies with ``hmac`` and ``cryptography``
alone."""
import json

import pytest

import audit
from audit import signing
from audit.models import AuditEvent
from compliance.siem import delivery, transports
from compliance.siem.models import SiemCursor, SiemSink
from governance.controls.services import control_change
from tests.siem import verify
from tests.siem.receivers import Collector, SyslogReceiver, parse, self_signed

pytestmark = pytest.mark.django_db


def sink(demo, **values) -> SiemSink:
    values = {"format": "ocsf", "batch_size": 40, **values}
    return SiemSink.objects.get(pk=control_change(actor=demo.admin, kind="compliance.siemsink", values=values).target_id)


def head() -> int:
    return AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()


def cursor(of: SiemSink) -> SiemCursor:
    return SiemCursor.objects.get(sink=of)


def drain(of: SiemSink) -> None:
    for _ in range(40):
        delivery.deliver(of.pk)
        if cursor(of).acknowledged_sequence == head():
            return
    raise AssertionError(f"{of.name} did not catch up: {cursor(of).last_error}")


def append(count: int, tag: str) -> list[int]:
    return [audit.record("siem.test_event", data={"tag": tag, "n": n}).sequence for n in range(count)]


def exactly_once_in_order(batches: list[list[int]]) -> list[int]:
    """Each batch in increasing order; de-duplicated by sequence (first arrival kept), increasing."""
    for batch in batches:
        assert batch == sorted(batch) and len(set(batch)) == len(batch), batch
    seen = []
    for batch in batches:
        seen += [s for s in batch if s not in seen]
    assert seen == sorted(seen)
    return seen


def all_sequences() -> list[int]:
    return list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))


def test_hec_and_generic_json_collectors_get_every_event_once_by_sequence_across_an_outage(demo, client):
    collector = Collector().start()
    hec = sink(demo, name="Splunk", transport="https_hec", destination=collector.url("/services/collector/event"),
               token="hec-token-1", secret="hmac-key-1")
    generic = sink(demo, name="Generic", transport="https_json", destination=collector.url("/json"), format="countersign")
    drain(hec), drain(generic)
    delivered_before = head()

    collector.stop()
    appended = append(70, "outage")
    delivery.deliver_all()  # refused: nothing moves
    assert cursor(hec).acknowledged_sequence == cursor(generic).acknowledged_sequence == delivered_before
    assert cursor(hec).failures == 1 and "Connection refused" in cursor(hec).last_error
    lag = {row["sink"]: row for row in client.get("/healthz").json()["details"]["siem"]}
    assert lag["Splunk"]["lag_events"] == head() - delivered_before >= 70
    assert lag["Splunk"]["oldest_unsent_age_seconds"] >= 0 and lag["Splunk"]["failures"] == 1

    collector.start()  # the same port
    collector.status = 503  # up, but refusing: still nothing moves
    delivery.deliver_all()
    assert cursor(hec).acknowledged_sequence == delivered_before
    collector.status = 302  # a redirect (to a login page) is not an acknowledgement
    delivery.deliver_all()
    assert cursor(generic).acknowledged_sequence == delivered_before
    collector.status = 200
    drain(hec), drain(generic)
    collector.stop()

    public = signing.public_key_pem()
    hec_batches, json_batches = [], []
    for headers, body, path in collector.requests:
        if path == "/json":
            assert verify.http_batch_ok(headers, body, secret=None, public_pem=public)
            assert "x-countersign-signature" not in headers  # no secret: Ed25519 only
            json_batches.append([item["sequence"] for item in json.loads(body)])
        else:
            assert headers["authorization"] == "Splunk hec-token-1"
            assert verify.http_batch_ok(headers, body, secret="hmac-key-1", public_pem=public)
            hec_batches.append(verify.hec_sequences(body))
    assert exactly_once_in_order(hec_batches) == all_sequences()
    assert exactly_once_in_order(json_batches) == all_sequences()
    assert set(appended) <= set(all_sequences())
    # The generic sink sends Countersign JSON: the audit-events API's shape, hash included.
    last = json.loads(collector.requests[-1][1])[-1]
    event = AuditEvent.objects.get(sequence=last["sequence"])
    assert last["event"]["hash"] == event.hash and last["event"]["action"] == event.action
    assert client.get("/healthz").json()["details"]["siem"][0]["lag_events"] == 0


def test_an_acknowledgement_that_comes_too_late_sends_the_batch_again_and_the_receiver_deduplicates(
        demo, monkeypatch):
    monkeypatch.setattr(transports, "TIMEOUT_SECONDS", 0.3)
    collector = Collector().start()
    hec = sink(demo, name="Slow", transport="https_hec", destination=collector.url("/services/collector/event"),
               token="t", batch_size=1000)
    collector.delay = 0.6  # the collector stores the batch but answers after the sender gave up
    delivery.deliver(hec.pk)
    assert cursor(hec).acknowledged_sequence == 0 and "timed out" in cursor(hec).last_error
    collector.delay = 0
    drain(hec)
    collector.stop()
    batches = [verify.hec_sequences(body) for _, body, _ in collector.requests]
    assert batches[0] == batches[1]  # on the wire twice …
    assert exactly_once_in_order(batches) == all_sequences()  # … once by sequence


def _syslog_batches(receiver, *, secret: str | None) -> list[list[int]]:
    """Every connection is a batch: event messages, then the closing signature message."""
    public = signing.public_key_pem()
    batches = []
    for frames in receiver.connections:
        *events, closing = frames
        batch = parse(closing)
        assert (batch["msgid"], batch["sd_id"]) == ("batch", "countersign-batch@32473")
        params = batch["params"]
        signed = b"".join(events)
        assert verify.ed25519_ok(public, params["key"], params["t"], params["ed25519"], signed)
        if secret:
            assert verify.hmac_ok(secret, params["t"], params["v1"], signed)
            assert not verify.hmac_ok(secret, params["t"], params["v1"], signed + b" ")
        sequences = []
        for frame in events:
            message = parse(frame)
            assert message["sd_id"] == "countersign@32473" and message["app"] == "countersign"
            assert message["pri"] // 8 == 13  # facility: log audit
            assert message["msg"].startswith(b"\xef\xbb\xbf")
            body = json.loads(message["msg"][3:])
            assert int(message["params"]["seq"]) == body["metadata"]["sequence"]
            assert message["msgid"] == body["metadata"]["event_code"][:32]
            sequences.append(int(message["params"]["seq"]))
        assert [int(params["first"]), int(params["last"]), int(params["count"])] == [
            sequences[0], sequences[-1], len(sequences)]
        batches.append(sequences)
    return batches


@pytest.mark.parametrize("transport", ["syslog_tcp", "syslog_tls"])
def test_a_syslog_receiver_gets_every_event_once_by_sequence_across_an_outage(demo, tmp_path, transport):
    pem, context = self_signed(tmp_path) if transport == "syslog_tls" else (None, None)
    receiver = SyslogReceiver(tls=context).start()
    stream = sink(demo, name="Syslog", transport=transport, destination=f"127.0.0.1:{receiver.port}",
                  secret="syslog-hmac", ca_certificate=pem or "")
    drain(stream)
    delivered_before = head()

    receiver.stop()
    append(55, "outage")
    delivery.deliver(stream.pk)
    assert cursor(stream).acknowledged_sequence == delivered_before and cursor(stream).failures == 1

    receiver.start()
    drain(stream)
    receiver.stop()
    assert receiver.errors == []
    assert exactly_once_in_order(_syslog_batches(receiver, secret="syslog-hmac")) == all_sequences()


def test_tls_syslog_refuses_a_receiver_whose_certificate_the_sink_does_not_trust(demo, tmp_path):
    _, context = self_signed(tmp_path)
    receiver = SyslogReceiver(tls=context).start()
    other_ca, _ = self_signed()
    stream = sink(demo, name="Syslog", transport="syslog_tls", destination=f"127.0.0.1:{receiver.port}",
                  ca_certificate=other_ca)
    delivery.deliver(stream.pk)
    receiver.stop()
    assert cursor(stream).acknowledged_sequence == 0
    assert "CERTIFICATE_VERIFY_FAILED" in cursor(stream).last_error
    assert receiver.connections == []


def test_a_sink_streams_only_its_actions_and_still_moves_past_the_others(demo):
    receiver = SyslogReceiver().start()
    stream = sink(demo, name="Grants", transport="syslog_tcp", destination=f"127.0.0.1:{receiver.port}",
                  actions="role.*, siem.test_event")
    append(3, "wanted")
    drain(stream)
    receiver.stop()
    actions = {parse(frame)["params"]["action"] for frames in receiver.connections for frame in frames[:-1]}
    assert actions <= {"siem.test_event"} | {a for a in actions if a.startswith("role.")}
    assert "siem.test_event" in actions
    assert cursor(stream).acknowledged_sequence == head()


def test_a_switched_off_sink_sends_nothing(demo):
    receiver = SyslogReceiver().start()
    stream = sink(demo, name="Off", transport="syslog_tcp", destination=f"127.0.0.1:{receiver.port}",
                  is_active=False)
    assert delivery.deliver_all() == {}
    delivery.deliver(stream.pk)
    receiver.stop()
    assert receiver.connections == [] and cursor(stream).acknowledged_sequence == 0


def test_the_beat_task_streams_every_active_sink(demo):
    from config.schedule import SCHEDULE
    from compliance.tasks import stream_to_siems

    assert {"task": "compliance.tasks.stream_to_siems", "every": 10} in SCHEDULE.values()
    receiver = SyslogReceiver().start()
    stream = sink(demo, name="Beat", transport="syslog_tcp", destination=f"127.0.0.1:{receiver.port}", batch_size=1000)
    assert stream_to_siems.apply().get() == {"Beat": head()}
    receiver.stop()
    assert cursor(stream).acknowledged_sequence == head()
