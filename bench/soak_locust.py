"""Locust traffic for the soak (bench/soak.py starts it; issue 7, point 5): the demo's pipeline over
the API, concurrently. Each simulated client loops over a mix of

* the write path of one change: dev/dev2 create and submit in staging, rev/rev2 approve, ops asks
  the gate, deploys and reports success (five writes, each exactly one audit event);
* reads: the change-request list and the deploy gate of a known change.

Every answer is tallied by operation and status and written to ``SOAK_TALLY`` when locust quits, so
bench/soak.py can compare successful writes with the audit events the server recorded. A 5xx or a
dropped connection is a locust failure; so is any other status than the one the step expects."""
import itertools
import json
import os
import secrets
import uuid
from collections import defaultdict

from locust import HttpUser, between, events, task

TOKENS = json.loads(os.environ["SOAK_TOKENS"])
TALLY_PATH = os.environ["SOAK_TALLY"]
TIMEOUT = 120
_tally: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
_known_changes: list[int] = []
_serial = itertools.count()


@events.request.add_listener
def _count(name, response, exception, **kwargs):
    status = 0 if exception is not None and response is None else getattr(response, "status_code", 0) or 0
    _tally[name][status] += 1


@events.quitting.add_listener
def _write_tally(environment, **kwargs):
    with open(TALLY_PATH, "w") as f:
        json.dump({name: {str(code): n for code, n in codes.items()} for name, codes in _tally.items()}, f, indent=1)


class Client(HttpUser):
    wait_time = between(0, 0.2)

    def _call(self, name: str, method: str, path: str, persona: str, expected: int, body: dict | None = None):
        headers = {"Authorization": f"Token {TOKENS[persona]}", "Accept": "application/json"}
        with self.client.request(method, path, name=name, json=body, headers=headers, timeout=TIMEOUT,
                                 catch_response=True) as response:
            if response.status_code != expected:
                response.failure(f"{name}: {response.status_code} {response.text[:200]}")
                return None
            response.success()
            return response.json()

    @task(3)
    def change_through_the_pipeline(self):
        author, reviewer = secrets.choice([("dev", "rev"), ("dev2", "rev2"), ("dev", "rev2"), ("dev2", "rev")])
        created = self._call("create", "POST", "/api/v1/change-requests/", author, 201, {
            "title": f"Soak change {next(_serial)}", "team": "payments", "environment": "staging",
            "artifact": f"registry.example.com/payments-api:soak-{uuid.uuid4().hex[:12]}", "risk": "medium",
        })
        if created is None:
            return
        cr = created["id"]
        _known_changes.append(cr)
        if self._call("submit", "POST", f"/api/v1/change-requests/{cr}/submit/", author, 200) is None:
            return
        if self._call("approve", "POST", f"/api/v1/change-requests/{cr}/approve/", reviewer, 200,
                      {"revision": created["revision"], "comment": "Soak approval."}) is None:
            return
        self._call("gate", "GET", f"/api/v1/change-requests/{cr}/gate/?action=deploy", "ops", 200)
        deployment = self._call("deploy", "POST", f"/api/v1/change-requests/{cr}/deployments/", "ops", 201,
                                {"pipeline_url": "https://ci.example.com/soak"})
        if deployment is None:
            return
        self._call("finish", "POST", f"/api/v1/deployments/{deployment['id']}/finish/", "ops", 200,
                   {"outcome": "succeeded", "notes": "Soak rollout."})

    @task(4)
    def list_changes(self):
        self._call("list", "GET", "/api/v1/change-requests/?limit=20", secrets.choice(list(TOKENS)), 200)

    @task(3)
    def ask_the_gate(self):
        if _known_changes:
            cr = secrets.choice(_known_changes)
            self._call("gate", "GET", f"/api/v1/change-requests/{cr}/gate/?action=approve",
                       secrets.choice(["rev", "rev2", "ops"]), 200)
