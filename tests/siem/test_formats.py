"""The wire formats' details (docs/siem.md "On the wire"), read back with the tests' own parser."""
import json
from datetime import datetime, timezone

from audit.models import AuditEvent
from compliance.siem import formats
from compliance.siem.models import SiemSink
from tests.siem.receivers import parse, read_frames

AT = datetime(2026, 12, 2, 6, 10, 11, 123456, tzinfo=timezone.utc)


def event(action="alert.raised", **data):
    return AuditEvent(sequence=7, created_at=AT, actor_id=None, actor_username="", action=action, target_type="",
                      target_id="", target_repr='a "quoted" ] \\ repr', environment="", team="", ip=None,
                      user_agent="", request_id="", data=data, prev_hash="0" * 64, hash="b" * 64)


def test_structured_data_values_are_escaped_and_read_back():
    assert formats.sd_value('a"b]c\\d') == 'a\\"b\\]c\\\\d'
    closing = formats.syslog_signature(1, 2, 2, {"t": 1, "v1": 'x"]'}, AT)
    assert parse(closing)["params"] == {"first": "1", "last": "2", "count": "2", "t": "1", "v1": 'x"]'}


def test_a_syslog_message_is_rfc5424_with_octet_counting():
    sink = SiemSink(format=SiemSink.Format.COUNTERSIGN, transport=SiemSink.Transport.SYSLOG_TCP)
    data = formats.syslog_frames(sink, [event(severity="critical"), event("change_request.changes_requested_x")])
    first, second = [parse(frame) for frame in read_frames(data)]
    assert first["pri"] == 13 * 8 + 2 and first["timestamp"] == "2026-12-02T06:10:11.123456Z"
    assert (first["app"], first["procid"], first["msgid"]) == ("countersign", "-", "alert.raised")
    assert json.loads(first["msg"][3:])["target_repr"] == 'a "quoted" ] \\ repr'
    assert second["pri"] == 13 * 8 + 6 and len(second["msgid"]) == 32


def test_hec_and_generic_bodies_carry_the_sequence():
    sink = SiemSink(format=SiemSink.Format.OCSF, transport=SiemSink.Transport.HEC)
    [line] = formats.hec_body(sink, [event()]).decode().splitlines()
    hec = json.loads(line)
    assert hec["fields"]["countersign_sequence"] == "7" and hec["sourcetype"] == "countersign:ocsf"
    assert hec["time"] == AT.timestamp() and hec["event"]["metadata"]["sequence"] == 7
    generic = json.loads(formats.json_body(SiemSink(format="countersign"), [event()]))
    assert generic == [{"sequence": 7, "format": "countersign", "event": {**generic[0]["event"], "hash": "b" * 64}}]
