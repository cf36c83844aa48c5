"""Approve + deploy write path vs its floor. ``BENCH_TARGET=write``: each iteration takes the next
pending change of the plan's queue, approves it through the API as each reviewer the policy
needs, then starts its deployment as the operations persona (every step writes its audit event
and history in the same transaction). ``BENCH_TARGET=floor``: ``POST /bench/insert/``, one row.

Every non-2xx answer is an error: the benchmark requires zero."""
import itertools
import os

from locust import FastHttpUser, constant, task

from bench.locustfiles.common import auth, plan

PLAN = plan()
TARGET = os.environ.get("BENCH_TARGET", "write")
QUEUE = iter(PLAN.get("queue", []))  # one process, gevent greenlets: a shared iterator is safe
REVIEWERS = [auth(token) for token in PLAN["tokens"].get("reviewers", [])]
DEPLOYER = auth(PLAN["tokens"].get("deployer", ""))
FLOOR = auth(PLAN["tokens"].get("floor", ""))
_counter = itertools.count()


def _ok(response, expected: int) -> bool:
    if response.status_code != expected:
        response.failure(f"HTTP {response.status_code}: {response.text[:300]}")
        return False
    return True


class Releaser(FastHttpUser):
    wait_time = constant(0)

    @task
    def step(self):
        if TARGET == "floor":
            with self.client.post("/bench/insert/", headers=FLOOR, name="insert", catch_response=True) as r:
                _ok(r, 201)
            return
        change = next(QUEUE, None)
        if change is None:
            self.environment.runner.quit()
            return
        revision = 1  # the queue's changes are at their first revision (bench/seed.py, bench_queue)
        for headers in REVIEWERS:
            with self.client.post(f"/api/v1/change-requests/{change}/approve/",
                                  json={"revision": revision, "comment": "bench"},
                                  headers=headers, name="approve", catch_response=True) as r:
                if not _ok(r, 200):
                    return
                state, revision = r.json().get("state"), r.json().get("revision")
            if state == "approved":
                break
        with self.client.post(f"/api/v1/change-requests/{change}/deployments/", json={},
                              headers=DEPLOYER, name="deploy", catch_response=True) as r:
            _ok(r, 201)
