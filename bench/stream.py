"""``make bench``'s audit stream benchmark (issue 21): how many audit events a second the SIEM
delivery (``compliance.siem.delivery``) gets to a collector on this machine, beside the floor
measured in the same run: the same bytes written to the same receiver directly.

``n`` audit events are written straight into the table with one ``INSERT … SELECT`` (stand-in
hashes: delivery reads and formats events, it does not verify the chain), the rows the formatter
reads. For each transport, a sink whose cursor starts at 0 is delivered with
``delivery.deliver`` until its cursor reaches the head: each batch a locked cursor, a read of the
next ``batch`` events, the framing (OCSF records), the Ed25519 signature, one connection, the
cursor moved. The bytes sent are kept (``transports.send_syslog`` / ``transports.post`` wrapped,
the original still sending). The floor sends those same bytes to the same receiver in the same
batches, one connection per batch as the transport does (syslog over TCP: write, half-close, wait
for the receiver's close; HEC: one POST, its answer read), with nothing of Countersign: no query,
no formatting, no signature, no cursor. Figure and floor alternate round by round (so load on a
shared machine hits both alike) after one untimed delivery that warms up and captures the bytes;
the receiver must have read exactly the bytes sent, every round.

The receivers run in this process (threads, standard library only): a syslog receiver reading
each connection to its end, one at a time, and an HTTP collector answering 200, as
tests/siem/receivers.py does.

Run by bench/run.py in a throwaway test database (PostgreSQL when DATABASE_URL names one, else
SQLite); prints one JSON line. ``BENCH_STREAM_EVENTS`` (default 20000), ``BENCH_STREAM_BATCH``
(events a batch, default 100: a sink's default), ``BENCH_STREAM_ROUNDS`` (default 2),
``BENCH_STREAM_TRANSPORTS`` (default ``syslog_tcp,https_hec``).
"""
import http.client
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# The documented target (docs/performance.md): a sink keeps up with the audit trail when it
# streams faster than the chain can append; the chain's ceiling on the development machine is
# 77–130 appends a second (bench/append_concurrency.py), so a sink must deliver at least this many.
MIN_EVENTS_PER_SECOND = 1000

LABELS = {"syslog_tcp": "syslog (RFC 5424) over TCP", "https_hec": "Splunk HEC over HTTP"}

FILL = {
    "postgresql": (
        "INSERT INTO audit_auditevent (sequence, created_at, actor_id, actor_username, action, target_type, "
        "target_id, target_repr, environment, team, ip, user_agent, request_id, data, prev_hash, hash) "
        "SELECT i, now(), NULL, 'bench-rev', 'change_request.approved', 'releases.changerequest', i::text, "
        "'CR-' || i, 'production', 'payments', '127.0.0.1', 'bench/1.0', md5(i::text), "
        "jsonb_build_object('approval', i, 'state', 'approved'), "
        "lpad((i - 1)::text, 64, '0'), lpad(i::text, 64, '0') FROM generate_series(1, %s::bigint) AS i"
    ),
    "sqlite": (
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %s) "
        "INSERT INTO audit_auditevent (sequence, created_at, actor_id, actor_username, action, target_type, "
        "target_id, target_repr, environment, team, ip, user_agent, request_id, data, prev_hash, hash) "
        "SELECT i, '2026-01-01 00:00:00', NULL, 'bench-rev', 'change_request.approved', 'releases.changerequest', "
        "i, 'CR-' || i, 'production', 'payments', '127.0.0.1', 'bench/1.0', printf('%%032d', i), "
        "json_object('approval', i, 'state', 'approved'), printf('%%064d', i - 1), printf('%%064d', i) FROM s"
    ),
}


class SyslogReceiver:
    """TCP on 127.0.0.1: each connection read to its end (one at a time), then closed; counts bytes."""

    def __init__(self):
        self.received = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # stopped
            with conn:
                while chunk := conn.recv(65536):
                    self.received += len(chunk)

    def destination(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.sock.close()


class HecCollector:
    """HTTP on 127.0.0.1 answering every POST 200 as Splunk does; counts the bodies' bytes."""

    def __init__(self):
        collector = self
        self.received = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                collector.received += len(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "27")
                self.end_headers()
                self.wfile.write(b'{"text":"Success","code":0}')

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def destination(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/collector/event"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


RECEIVERS = {"syslog_tcp": SyslogReceiver, "https_hec": HecCollector}


def fill(size: int) -> None:
    """An empty audit log replaced by ``size`` events (sequences 1 … size)."""
    from django.db import connection, transaction

    from audit.models import AuditEvent

    with transaction.atomic(), connection.cursor() as cursor:
        # A throwaway database, the purge allowed in this process only (as the test suite does).
        if connection.vendor == "postgresql":
            cursor.execute("TRUNCATE audit_auditevent CASCADE")
        else:
            cursor.execute(f"DELETE FROM {AuditEvent._meta.db_table}")  # nosec B608
        cursor.execute(FILL[connection.vendor], [size])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")


def make_sink(transport: str, destination: str, batch: int):
    """A sink straight into its table (a throwaway database: no control change to review)."""
    from compliance.siem.models import SiemSink

    return SiemSink.objects.create(name=f"bench-{transport}", transport=transport, destination=destination,
                                   batch_size=batch, secret="bench-hmac", token="bench-token")  # nosec B106: a throwaway sink


def deliver(sink) -> tuple[float, list]:
    """The sink's cursor back to 0, then delivered until it reaches the head: (seconds, the batches
    sent: syslog payloads, or HEC (body, headers))."""
    from audit.models import AuditEvent
    from compliance.siem import delivery, transports
    from compliance.siem.models import SiemCursor

    head = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    SiemCursor.objects.update_or_create(sink=sink, defaults={"acknowledged_sequence": 0, "events_sent": 0})
    sent = []
    send_syslog, post = transports.send_syslog, transports.post

    def keep_syslog(of, payload):
        sent.append(payload)
        send_syslog(of, payload)

    def keep_post(of, body, headers):
        sent.append((body, headers))
        return post(of, body, headers)

    with mock.patch.object(transports, "send_syslog", keep_syslog), mock.patch.object(transports, "post", keep_post):
        started = time.perf_counter()
        delivery.deliver(sink.pk, max_batches=head)
        seconds = time.perf_counter() - started
    cursor = SiemCursor.objects.get(sink=sink)
    if cursor.acknowledged_sequence != head:
        raise RuntimeError(f"{sink.name} stopped at #{cursor.acknowledged_sequence} of {head}: {cursor.last_error}")
    return seconds, sent


def replay(receiver, batches: list) -> float:
    """The floor: the same batches written to the same receiver directly, one connection each."""
    started = time.perf_counter()
    for batch in batches:
        if isinstance(receiver, SyslogReceiver):
            with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
                sock.sendall(batch)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(4096):
                    pass
        else:
            body, headers = batch
            conn = http.client.HTTPConnection("127.0.0.1", receiver.port)
            conn.request("POST", "/services/collector/event", body, {"Content-Type": "application/json", **headers})
            conn.getresponse().read()
            conn.close()
    return time.perf_counter() - started


def size_of(batches: list) -> int:
    return sum(len(b if isinstance(b, bytes) else b[0]) for b in batches)


def measure(transport: str, events: int, batch: int, rounds: int) -> dict:
    """One transport: a warm-up delivery, then ``rounds`` of delivery and floor, alternating."""
    receiver = RECEIVERS[transport]()
    try:
        sink = make_sink(transport, receiver.destination(), batch)
        _, batches = deliver(sink)  # untimed: warms up, and the bytes for the first floor
        seconds = {"figure": 0.0, "floor": 0.0}
        exact = receiver.received == size_of(batches)
        for r in range(rounds):
            for side in ("floor", "figure") if r % 2 == 0 else ("figure", "floor"):
                before = receiver.received
                if side == "figure":
                    elapsed, batches = deliver(sink)
                else:
                    elapsed = replay(receiver, batches)
                seconds[side] += elapsed
                exact = exact and receiver.received - before == size_of(batches)
    finally:
        receiver.stop()
    return {"transport": transport, "batches": len(batches), "bytes": size_of(batches), "exact": exact,
            "events_per_second": events * rounds / seconds["figure"],
            "floor_events_per_second": events * rounds / seconds["floor"]}


def run() -> dict:
    from django.db import connection

    events = int(os.environ.get("BENCH_STREAM_EVENTS", "20000"))
    batch = int(os.environ.get("BENCH_STREAM_BATCH", "100"))
    rounds = int(os.environ.get("BENCH_STREAM_ROUNDS", "2"))
    transports = [t.strip() for t in os.environ.get("BENCH_STREAM_TRANSPORTS", "syslog_tcp,https_hec").split(",")
                  if t.strip()]
    unknown = set(transports) - set(RECEIVERS)
    if unknown:
        raise SystemExit(f"BENCH_STREAM_TRANSPORTS: unknown {sorted(unknown)}; choose from {sorted(RECEIVERS)}")
    fill(events)
    return {"vendor": connection.vendor, "events": events, "batch": batch, "rounds": rounds,
            "min_events_per_second": MIN_EVENTS_PER_SECOND,
            "transports": [measure(t, events, batch, rounds) for t in transports]}


def lines(r: dict) -> list[tuple[str, bool]]:
    """(line, ok) per transport."""
    out = []
    for t in r["transports"]:
        rate, floor = t["events_per_second"], t["floor_events_per_second"]
        ok = rate >= r["min_events_per_second"] and t["exact"]
        out.append((f"audit stream, {LABELS[t['transport']]}, to a receiver on 127.0.0.1 ({r['vendor']}, "
                    f"{r['events']:,} events x {r['rounds']} rounds, {r['batch']} a batch, OCSF, signed): "
                    f"{rate:,.0f} events/s, {t['bytes'] / r['events']:.0f} bytes/event, receiver got "
                    f"{'every byte' if t['exact'] else 'OTHER BYTES'} | floor (the same bytes to the same receiver, "
                    f"same {t['batches']} batches, no Countersign): {floor:,.0f} events/s | ratio {rate / floor:.3f} | "
                    f"target >= {r['min_events_per_second']:,} events/s, every byte received | "
                    f"{'OK' if ok else 'MISSED'}", ok))
    return out


if __name__ == "__main__":
    from bench.throwaway import measure_in_throwaway_database

    measure_in_throwaway_database(run, purge_allowed=True)
