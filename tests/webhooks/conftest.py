"""A webhook receiver on 127.0.0.1 that checks every delivery's signature with the code
docs/webhooks.md gives receivers (extracted from the doc, not imported from Countersign)."""
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
SECRET = "whsec-test-0123456789"


def documented_verifier():
    blocks = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
              if b.startswith("# verify_countersign.py")]
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], "verify_countersign.py", "exec"), namespace)  # noqa: S102 - the doc's own code
    return namespace["verify"]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server = self.server
        header = self.headers.get("X-Countersign-Signature", "")
        server.owner.received.append({
            "headers": dict(self.headers), "body": body, "json": json.loads(body),
            "verified": server.owner.verify(SECRET.encode(), body, header),
        })
        status = server.owner.statuses.pop(0) if server.owner.statuses else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


class Receiver:
    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/countersign"
        self.received: list[dict] = []
        self.statuses: list[int] = []  # answered in turn, then 200
        self.verify = documented_verifier()
        self.server = None

    def start(self):
        self.server = HTTPServer(("127.0.0.1", self.port), _Handler)
        self.server.owner = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self) -> list[str]:
        return [r["json"]["event"] for r in self.domain()]

    def domain(self) -> list[dict]:
        """The domain events received (a channel also gets the notifications its ``topics`` take)."""
        return [r for r in self.received if "event" in r["json"]]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()
