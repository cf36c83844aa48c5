"""Receivers on 127.0.0.1 for the SIEM tests, written with the standard library only (nothing of
Countersign): an HTTP collector, and a syslog receiver over TCP or TLS that reads RFC 6587
octet-counted frames. Each can be stopped and started again on the same port.

The syslog receiver handles one connection at a time, to its end, in the order they arrive: a
batch is one connection, so what it records is in the order the sender sent it."""
import ipaddress
import re
import socket
import ssl
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Collector:
    """Records every POST (headers, body); answers ``status`` (and waits ``delay`` seconds first)."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes, str]] = []
        self.status = 200
        self.delay = 0.0
        self.port = 0
        self.server = None

    def start(self):
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                collector.requests.append(({k.lower(): v for k, v in self.headers.items()}, body, self.path))
                if collector.delay:
                    time.sleep(collector.delay)
                self.send_response(collector.status)
                if 300 <= collector.status < 400:
                    self.send_header("Location", "/login")
                self.send_header("Content-Length", "27")
                self.end_headers()
                self.wfile.write(b'{"text":"Success","code":0}')

            def do_GET(self):  # where a redirect leads: a login page, 200
                self.send_response(200)
                self.send_header("Content-Length", "10")
                self.end_headers()
                self.wfile.write(b"login page")

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def read_frames(data: bytes) -> list[bytes]:
    """RFC 6587 octet counting: ``MSG-LEN SP SYSLOG-MSG`` repeated; raw frames, prefix included."""
    frames, at = [], 0
    while at < len(data):
        space = data.index(b" ", at)
        length = int(data[at:space])
        frames.append(data[at:space + 1 + length])
        at = space + 1 + length
    return frames


def message_of(frame: bytes) -> bytes:
    return frame.split(b" ", 1)[1]


SYSLOG = re.compile(rb"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[(?:[^\]\\]|\\.)*\](?:\[(?:[^\]\\]|\\.)*\])*) ?(.*)$",
                    re.DOTALL)
PARAM = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(frame: bytes) -> dict:
    """An RFC 5424 message: PRI, the header fields, the first SD element's id and params, MSG."""
    match = SYSLOG.match(message_of(frame))
    assert match, frame[:200]
    pri, stamp, host, app, procid, msgid, sd, msg = match.groups()
    sd = sd.decode("ascii")
    return {"pri": int(pri), "timestamp": stamp.decode(), "host": host.decode(), "app": app.decode(),
            "procid": procid.decode(), "msgid": msgid.decode(), "sd_id": sd[1:].split(" ", 1)[0].rstrip("]"),
            "params": {k: re.sub(r"\\(.)", r"\1", v) for k, v in PARAM.findall(sd)}, "msg": msg}


class SyslogReceiver:
    """A TCP (or, with ``tls``, TLS) listener; ``connections`` holds each connection's raw frames."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.tls = tls
        self.port = 0
        self.connections: list[list[bytes]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()

    def start(self):
        self._stop.clear()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            try:
                self._one(conn)
            except Exception as exc:  # noqa: BLE001 - recorded for the test to see
                self.errors.append(repr(exc))

    def _one(self, conn):
        conn.settimeout(5)
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        self.connections.append(read_frames(data))
        if self.tls is not None:
            try:
                conn = conn.unwrap()
            except (ssl.SSLError, OSError):
                pass
        conn.close()

    def stop(self):
        self._stop.set()
        self.thread.join()
        self.sock.close()


def self_signed(tmp_path=None) -> tuple[str, ssl.SSLContext | None]:
    """A certificate for 127.0.0.1 and localhost (PEM), and a server context holding it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "siem-test")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    if tmp_path is None:
        return pem, None
    (tmp_path / "cert.pem").write_text(pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return pem, context
