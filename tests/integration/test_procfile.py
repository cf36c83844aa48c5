"""The Procfile's three processes (web, worker, beat) under honcho, in production shape."""
import json
import signal
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from governance.models import RoleAssignment
from tests.integration.conftest import ROOT, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthz(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except OSError:
        return None


def test_honcho_starts_web_worker_and_beat(process_env, send, tmp_path):
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    port = _free_port()
    env = {**process_env, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0",
           "WEB_CONCURRENCY": "1", "WORKER_CONCURRENCY": "1", "LOG_LEVEL": "warning",
           # The Procfile names gunicorn and celery as an activated virtualenv would.
           "PATH": f"{Path(sys.executable).parent}:{process_env.get('PATH', '')}"}
    log_path = Path(tmp_path / "honcho.log")
    with open(log_path, "wb") as log:
        honcho = subprocess.Popen(
            [str(Path(sys.executable).parent / "honcho"), "start", "-f", str(ROOT / "Procfile"), "-p", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            status, body = wait_for(lambda: _healthz(port) or (honcho.poll() is not None and (0, {})),
                                    timeout=60, what=f"/healthz on :{port}")
            assert honcho.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert status == 200 and body["checks"] == {"database": "ok", "broker": "ok"}, body
            grant = RoleAssignment.objects.get(user__username="ops", environment__slug="production")
            RoleAssignment.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=5))
            send("governance.tasks.expire_grants")
            wait_for(lambda: RoleAssignment.objects.get(pk=grant.pk).status == "expired", timeout=60,
                     what="the worker to expire the grant")
            assert "beat" in log_path.read_text(errors="replace")
        finally:
            honcho.send_signal(signal.SIGTERM)
            try:
                honcho.wait(timeout=30)
            except subprocess.TimeoutExpired:
                honcho.kill()
    assert _healthz(port) is None, "web still answers after honcho stopped"
