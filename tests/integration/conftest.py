"""A real Celery worker (and the Procfile's processes) against Redis and the test database.

These tests run in CI's PostgreSQL + Redis pass. Each run uses its own queue, so a worker left
over from something else on the same Redis never takes the tests' tasks."""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.waiting import wait_for  # noqa: F401 - the tests here import it from this module

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{connection.settings_dict['NAME']}"


@pytest.fixture
def queue():
    return f"countersign-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def process_env(queue, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "CELERY_UNACKED_RESTORE_SECONDS": "1",
        "COUNTERSIGN_VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "integration-test-secret-" + "x" * 40,  # DEBUG off wants 50+ characters
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("COUNTERSIGN_AUDIT_PURGE_ALLOWED", None)
    return env


class Worker:
    def __init__(self, env, log_path: Path, queue: str):
        self.env, self.log_path, self.queue = env, log_path, queue
        self.process = None

    def start(self, timeout: float = 60) -> "Worker":
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=info",
             "-Q", self.queue, "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log_path.read_text(errors="replace"):
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready: {self.log_path.read_text(errors='replace')[-2000:]}")

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def start_worker(process_env, queue, tmp_path):
    workers = []

    def start():
        worker = Worker(process_env, tmp_path / "worker.log", queue).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def send(queue):
    from config.celery import app

    def send_task(name, *args, **kwargs):
        return app.send_task(name, args=args, kwargs=kwargs, queue=queue)

    return send_task




from tests.scheduled.conftest import receiver  # noqa: E402,F401 - the same local webhook receiver
