import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append({"headers": dict(self.headers), "body": body, "json": json.loads(body)})
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args):
        pass


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records what it is sent."""

    def __init__(self):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.server = None
        self.received = []
        self.status = 200

    def start(self):
        self.server = HTTPServer(("127.0.0.1", self.port), _Receiver)
        self.server.received = self.received
        self.server.status = self.status
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def receiver():
    r = WebhookReceiver()
    yield r
    r.stop()
