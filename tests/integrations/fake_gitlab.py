"""A fake GitLab API on 127.0.0.1, started by the tests: it serves only what Countersign may call
and checks each request against GitLab's documented shape, answering as GitLab documents.

The endpoint encoded here is "Approve or reject a blocked deployment" of GitLab's Deployments
API, https://docs.gitlab.com/api/deployments/#approve-or-reject-a-blocked-deployment
(``doc/api/deployments.md`` in https://gitlab.com/gitlab-org/gitlab):

    POST /projects/:id/deployments/:deployment_id/approval
    id              integer/string  required  the project's ID or URL-encoded path
    deployment_id   integer         required
    status          string          required  approved or rejected
    comment         string          optional
    represented_as  string          optional

authenticated by ``PRIVATE-TOKEN: <access token>``; the example response is the approval
(``user``, ``status``, ``created_at``, ``comment``). Anything else is recorded as a violation and
answered as GitLab answers it (401 without the token, 404 for another path, 400 for a bad body);
``violations`` must stay empty for a test to pass.
"""
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

DOC = "https://docs.gitlab.com/api/deployments/#approve-or-reject-a-blocked-deployment"
PREFIX = "/api/v4"
APPROVAL = re.compile(r"^/projects/(?P<id>[^/]+)/deployments/(?P<deployment_id>\d+)/approval$")
PARAMETERS = {"status", "comment", "represented_as"}
STATUSES = {"approved", "rejected"}


@dataclass
class Call:
    method: str
    path: str
    project: str
    deployment_id: int
    body: dict


@dataclass
class FakeGitLab:
    token: str
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{PREFIX}"

    def start(self) -> "FakeGitLab":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _refuse(self, status: int, message: str, violation: str) -> None:
                fake.violations.append(f"{self.command} {self.path}: {violation} ({DOC})")
                self._answer(status, {"message": message})

            def do_GET(self):  # noqa: N802
                self._refuse(404, "404 Not Found", "Countersign only approves or rejects")

            do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815

            def do_POST(self):  # noqa: N802
                if not self.path.startswith(PREFIX + "/"):
                    return self._refuse(404, "404 Not Found", "not under /api/v4")
                found = APPROVAL.match(self.path[len(PREFIX):])
                if found is None:
                    return self._refuse(404, "404 Not Found", "not the approval endpoint")
                if self.headers.get("PRIVATE-TOKEN") != fake.token:
                    return self._refuse(401, "401 Unauthorized", "PRIVATE-TOKEN missing or wrong")
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                try:
                    if kind == "application/json":
                        body = json.loads(raw)
                    elif kind == "application/x-www-form-urlencoded":
                        body = {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
                    else:
                        return self._refuse(415, "415 Unsupported Media Type", f"content type {kind!r}")
                except ValueError:
                    return self._refuse(400, "400 Bad request", "body does not parse")
                if not isinstance(body, dict):
                    return self._refuse(400, "400 Bad request", "body is not an object")
                unknown = set(body) - PARAMETERS
                if unknown:
                    return self._refuse(400, "400 Bad request", f"parameters the API does not take: {sorted(unknown)}")
                if body.get("status") not in STATUSES:
                    return self._refuse(400, "400 Bad request - status does not have a valid value",
                                        f"status {body.get('status')!r}")
                for name in ("comment", "represented_as"):
                    if name in body and not isinstance(body[name], str):
                        return self._refuse(400, "400 Bad request", f"{name} is not a string")
                fake.calls.append(Call("POST", self.path, unquote(found["id"]), int(found["deployment_id"]), body))
                self._answer(201, {
                    "user": {"id": 100, "username": "countersign-bot", "name": "Countersign", "state": "active",
                             "avatar_url": "", "web_url": "http://127.0.0.1/countersign-bot"},
                    "status": body["status"], "created_at": "2022-02-24T20:22:30.097Z",
                    "comment": body.get("comment"),
                })

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
