"""Gate decision vs its floor, read-only. ``BENCH_TARGET=gate``: ``GET change-requests/{id}/gate/
?action=deploy`` as the operations persona (what a CI pipeline asks before each deploy);
``BENCH_TARGET=floor``: ``GET /bench/row/{id}/`` for the same change, same key."""
import os

from locust import FastHttpUser, constant, task

from bench.locustfiles.common import auth, plan

PLAN = plan()
TARGET = os.environ.get("BENCH_TARGET", "gate")
CHANGE = PLAN["gate_change_id"]
HEADERS = auth(PLAN["tokens"]["gate"])


class Pipeline(FastHttpUser):
    wait_time = constant(0)

    @task
    def ask(self):
        if TARGET == "gate":
            path = f"/api/v1/change-requests/{CHANGE}/gate/?action=deploy"
        else:
            path = f"/bench/row/{CHANGE}/"
        with self.client.get(path, headers=HEADERS, name=TARGET, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            elif TARGET == "gate" and "allowed" not in response.json():
                response.failure("no decision in the answer")
