"""Issue 7, point 4: PostgreSQL restarts under load. Requests during the outage fail cleanly (503
with Retry-After and a body without a trace, never a 500), nothing is half-written, and the same
gunicorn processes serve 200 again once the database is back, without a restart.

The database is a cluster of the test's own (servers.PostgresCluster), never the shared one."""
import json
import threading
import time

import pytest

from tests.resilience.servers import Gunicorn, manage, server_env, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.resilience]


class Load(threading.Thread):
    """Keeps requests going (list, gate, a portal page, health) and records every answer."""

    def __init__(self, web: Gunicorn, token: str, change_request: int, session: str):
        super().__init__(daemon=True)
        self.web, self.token, self.cr, self.session = web, token, change_request, session
        self.results: list[tuple[float, str, int, dict, bytes]] = []
        self.halt = threading.Event()

    def run(self):
        paths = [f"/api/v1/change-requests/{self.cr}/gate/?action=deploy", "/api/v1/change-requests/?limit=5"]
        while not self.halt.is_set():
            for path in paths:
                status, headers, body = self.web.get(path, token=self.token)
                self.results.append((time.monotonic(), path, status, headers, body))
            status, headers, body = self.web.request("GET", "/", cookie=self.session)
            self.results.append((time.monotonic(), "/", status, headers, body))
            time.sleep(0.02)


def _session_cookie(env: dict, username: str) -> str:
    """A logged-in portal session for ``username``. Made on the server side: with DEBUG off the
    session and CSRF cookies are ``Secure``, which a plain-HTTP test client would not send back."""
    key = manage(env, "shell", "-c", (
        "from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        f"u = get_user_model().objects.get(username={username!r}); s = SessionStore()\n"
        "s[SESSION_KEY] = str(u.pk); s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "s[HASH_SESSION_KEY] = u.get_session_auth_hash(); s.create(); print(s.session_key)"
    )).split()[-1]
    return f"sessionid={key}"


def test_a_postgres_restart_under_load_answers_503_and_recovers_without_an_app_restart(pg_cluster, tmp_path):
    pg_cluster.createdb("countersign")
    env = server_env(pg_cluster.url("countersign"), tmp_path / "var")
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_demo")
    token = manage(env, "create_api_token", "ops").strip()
    dev_token = manage(env, "create_api_token", "dev").strip()

    web = Gunicorn(env, tmp_path / "gunicorn.log", workers=2).start()
    try:
        status, _, body = web.get("/api/v1/change-requests/?state=approved&limit=1", token=token)
        assert status == 200, body
        change_request = json.loads(body)["results"][0]["id"]
        session = _session_cookie(env, "rev")
        workers_before = web.worker_pids()
        assert len(workers_before) == 2

        load = Load(web, token, change_request, session)
        load.start()
        wait_for(lambda: len(load.results) >= 30, timeout=60, what="load before the restart")
        before = len(load.results)

        outage_started = time.monotonic()
        pg_cluster.stop()
        # While the database is down: the load sees 503s, health says so, and a write fails cleanly.
        wait_for(lambda: any(r[2] == 503 for r in load.results[before:]), timeout=30, what="a 503 under load")
        assert all(r[2] == 200 for r in load.results[:before]), "failures before the outage"
        health_status, health_headers, health_body = web.get("/healthz")
        write_status, write_headers, write_body = web.request(
            "POST", "/api/v1/change-requests/", token=dev_token,
            body={"title": "Written during the outage", "team": "payments", "environment": "staging",
                  "artifact": "payments-api:outage"},
        )
        wait_for(lambda: len(load.results) >= before + 30, timeout=60, what="load during the outage")
        time.sleep(max(0.0, 3 - (time.monotonic() - outage_started)))  # an outage of some seconds
        pg_cluster.start()
        outage_ended = time.monotonic()

        recovered = wait_for(
            lambda: next((i for i, r in enumerate(load.results) if r[0] > outage_ended and r[2] == 200), None),
            timeout=60, what="a 200 after PostgreSQL came back",
        )
        wait_for(lambda: len(load.results) >= recovered + 60, timeout=60, what="load after the restart")
        load.halt.set()
        load.join(timeout=30)
        results = list(load.results)
        workers_after = web.worker_pids()
    finally:
        web.stop()

    statuses = [r[2] for r in results]
    assert 500 not in statuses and not [s for s in statuses if s > 503 or s == 502], sorted(set(statuses))
    assert set(statuses) <= {200, 503}, f"unexpected answers: {sorted(set(statuses))}\n{web.log()}"
    failures = [r for r in results if r[2] == 503]
    assert failures, "the outage was never seen"
    assert all(outage_started <= r[0] for r in failures), "a 503 before the outage began"
    for _, path, _, headers, body in failures:
        assert headers.get("Retry-After") == "5", (path, headers)
        assert b"Traceback" not in body and b"psycopg" not in body and b"OperationalError" not in body, body
        if path.startswith("/api/"):
            assert json.loads(body)["detail"].startswith("The database is unavailable"), body
        else:
            assert headers["Content-Type"].startswith("text/html") and b"Service unavailable" in body, body
    assert {r[1] for r in failures} == {r[1] for r in results}, "every kind of page answered 503 in the outage"
    # Once back: the last answers are all 200, from the very same worker processes.
    tail = results[-30:]
    assert all(r[2] == 200 for r in tail), [r[2] for r in tail]
    assert workers_after == workers_before, "gunicorn workers were replaced: the app restarted"

    print(f"postgres restart: {len(results)} requests, {len(failures)} answered 503 during a "
          f"{outage_ended - outage_started:.1f} s outage, first 200 {results[recovered][0] - outage_ended:.1f} s "
          f"after PostgreSQL was back, 0 x 500, same {len(workers_after)} gunicorn workers")
    assert health_status == 503 and json.loads(health_body)["checks"]["database"].startswith("error"), health_body
    assert health_headers.get("Retry-After") == "5"
    assert write_status == 503, write_body
    after = manage(env, "shell", "-c", "from releases.models import ChangeRequest as C; "
                   "print(C.objects.filter(title='Written during the outage').count())")
    assert after.split()[-1] == "0"
    manage(env, "audit_verify")
