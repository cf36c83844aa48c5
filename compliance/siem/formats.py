"""What a batch looks like on the wire (docs/siem.md "Formats").

An event is a *record*: the Countersign JSON of ``GET /api/v1/audit-events/`` (the fields its hash
covers, plus ``prev_hash`` and ``hash``) or its OCSF event (``compliance.siem.ocsf``). A batch is
framed for its transport: Splunk HEC envelopes, one generic JSON array, or RFC 5424 syslog
messages with RFC 6587 octet-counting. The event's ``sequence`` is the de-duplication id in each:
HEC ``fields.countersign_sequence``, the generic envelope's ``sequence``, syslog's structured data
``[countersign@32473 seq="N"]``.
"""
import json
import socket
from datetime import datetime, timezone as dt_timezone

from audit.chain import canonical_fields
from audit.models import AuditEvent
from compliance.siem import ocsf
from compliance.siem.models import SiemSink

# RFC 5612's enterprise number for documentation: Countersign has no IANA number of its own.
ENTERPRISE = 32473
SD_EVENT = f"countersign@{ENTERPRISE}"
SD_BATCH = f"countersign-batch@{ENTERPRISE}"
APP_NAME = "countersign"
FACILITY = 13  # log audit (RFC 5424 table 1)
ALERT_LEVELS = {"low": 5, "medium": 4, "high": 3, "critical": 2}  # notice, warning, error, critical
INFORMATIONAL = 6
BOM = b"\xef\xbb\xbf"


def countersign(event: AuditEvent) -> dict:
    return {**canonical_fields(event), "prev_hash": event.prev_hash, "hash": event.hash}


def record(sink: SiemSink, event: AuditEvent) -> dict:
    base = countersign(event)
    return ocsf.event(base) if sink.format == SiemSink.Format.OCSF else base


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hostname() -> str:
    """RFC 5424 HOSTNAME: printable US-ASCII, at most 255 characters."""
    name = "".join(c for c in socket.gethostname() if 33 <= ord(c) <= 126)[:255]
    return name or "-"


def sourcetype(sink: SiemSink) -> str:
    return "countersign:ocsf" if sink.format == SiemSink.Format.OCSF else "countersign:audit"


# --- HTTPS ------------------------------------------------------------------------------------------


def hec_body(sink: SiemSink, events: list[AuditEvent]) -> bytes:
    """Splunk HEC's batch: one JSON object per event, one per line (``/services/collector/event``)."""
    host = hostname()
    lines = []
    for event in events:
        lines.append(_dumps({
            "time": round(event.created_at.timestamp(), 6),
            "host": host,
            "source": "countersign",
            "sourcetype": sourcetype(sink),
            "event": record(sink, event),
            "fields": {"countersign_sequence": str(event.sequence), "countersign_action": event.action},
        }))
    return "\n".join(lines).encode("utf-8")


def json_body(sink: SiemSink, events: list[AuditEvent]) -> bytes:
    """Generic JSON: one array per batch, ``[{"sequence": N, "format": ..., "event": record}, …]``."""
    return _dumps([{"sequence": e.sequence, "format": sink.format, "event": record(sink, e)}
                   for e in events]).encode("utf-8")


# --- Syslog ---------------------------------------------------------------------------------------


def sd_value(value) -> str:
    """An SD-PARAM value: ``"``, ``\\`` and ``]`` escaped (RFC 5424 section 6.3.3)."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def msgid(action: str) -> str:
    """MSGID: the message's type (RFC 5424 section 6.2.7), printable US-ASCII, at most 32 characters."""
    return "".join(c for c in action if 33 <= ord(c) <= 126)[:32] or "-"


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


def syslog_message(sink: SiemSink, event: AuditEvent, host: str) -> bytes:
    """``<PRI>1 TIMESTAMP HOSTNAME countersign - MSGID [countersign@32473 seq=.. hash=..] BOM JSON``."""
    severity = INFORMATIONAL
    if event.action == "alert.raised":
        severity = ALERT_LEVELS.get(str((event.data or {}).get("severity")), INFORMATIONAL)
    sd = f'[{SD_EVENT} seq="{event.sequence}" action="{sd_value(event.action)}" hash="{event.hash}"]'
    header = f"<{FACILITY * 8 + severity}>1 {_timestamp(event.created_at)} {host} {APP_NAME} - {msgid(event.action)} {sd} "
    return header.encode("ascii", "replace") + BOM + _dumps(record(sink, event)).encode("utf-8")


def syslog_frames(sink: SiemSink, events: list[AuditEvent]) -> bytes:
    host = hostname()
    return b"".join(frame(syslog_message(sink, event, host)) for event in events)


def syslog_signature(first: int, last: int, count: int, params: dict, moment: datetime) -> bytes:
    """The batch's closing message: its range and signatures in ``[countersign-batch@32473 …]``,
    over the framed bytes of its event messages (docs/siem.md "Signatures")."""
    values = {"first": first, "last": last, "count": count, **params}
    sd = "[" + SD_BATCH + "".join(f' {name}="{sd_value(value)}"' for name, value in values.items()) + "]"
    text = f"<{FACILITY * 8 + INFORMATIONAL}>1 {_timestamp(moment)} {hostname()} {APP_NAME} - batch {sd}"
    return frame(text.encode("ascii"))
