"""One data scale's benchmarks, run by ``bench/run.py`` in a process of its own whose
DATABASE_URL names that scale's database: the plan (keys, sessions, the queue of changes to
approve and deploy), then gunicorn + locust for the gate and the write path, then page
latencies, each beside its floor. Prints one JSON document on stdout.

Usage: ``python bench/suite.py SCALE BENCHMARK[,BENCHMARK…]`` with BENCHMARK among gate, write,
pages, queries, export.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("dev", "rev", "rev2", "sec", "ops", "auditor", "admin")
# bench_seed's personas; BENCH_PERSONAS=dev,rev,rev2,sec,ops,auditor,admin runs against seed_demo instead.
PERSONAS = dict(zip(ROLES, os.environ.get("BENCH_PERSONAS", ",".join(f"bench-{r}" for r in ROLES)).split(","), strict=True))
SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
PAGE_REQUESTS = int(os.environ.get("BENCH_PAGE_REQUESTS", "40"))


def _users() -> dict:
    from django.contrib.auth import get_user_model

    found = {u.username: u for u in get_user_model().objects.filter(username__in=PERSONAS.values())}
    missing = set(PERSONAS.values()) - set(found)
    if missing:
        raise SystemExit(f"bench personas missing: {sorted(missing)} (run manage.py bench_seed first)")
    return {role: found[name] for role, name in PERSONAS.items()}


def _token(user) -> str:
    from governance.services import api_token_create

    return api_token_create(actor=user, user=user, name="bench", expires_days=1)[1]


def _session_cookie(user) -> str:
    """A signed-in session as ``django.test.Client.force_login`` makes it (the server shares the
    bench's SECRET_KEY). Sent as a raw header: with DEBUG off the cookie is marked Secure, and the
    bench talks plain HTTP on 127.0.0.1."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _queue(reviewer, deployer, size: int) -> list[int]:
    """Pending changes ``reviewer`` may approve through the API and ``deployer`` may then deploy
    without further conditions (no prior environment, window, freeze or security approval)."""
    from releases import selectors
    from releases.models import ChangeRequest

    from governance.models import RoleAssignment

    ops_envs = set(
        RoleAssignment.objects.in_force()
        .filter(user=deployer, role__duties__duty="deploy")
        .values_list("environment_id", flat=True)
    )
    candidates = (
        selectors.change_requests_awaiting_review(reviewer)
        .filter(
            environment__approval_policy__require_interactive_signoff=False,
            environment__approval_policy__require_prior_environment__isnull=True,
            environment__approval_policy__min_security_approvals=0,
            environment__approval_policy__deploy_weekdays="",
            environment__approval_policy__deploy_window_start__isnull=True,
            environment__approval_policy__min_approvals__lte=2,
            change_type=ChangeRequest.ChangeType.NORMAL,
            revision=1,  # the write path approves revision 1, as bench_seed's queue is (locustfiles/write.py)
        )
        .exclude(risk=ChangeRequest.Risk.HIGH)
        .exclude(contributors__username__in=[PERSONAS["rev2"], PERSONAS["ops"]])
        .exclude(author__username__in=[PERSONAS["rev2"], PERSONAS["ops"]])
    )
    if None not in ops_envs:
        candidates = candidates.filter(environment_id__in=ops_envs)
    return list(candidates.values_list("pk", flat=True)[:size])


def _fixtures() -> dict | None:
    """``bench.seed.bench_fixtures()`` when the database was loaded by ``bench_seed``."""
    from governance.models import Team

    from bench import seed

    if not Team.objects.filter(slug=seed.BENCH_TEAM).exists():
        return None
    return seed.bench_fixtures()


def _gate_change(deployer) -> int:
    from releases import selectors

    for cr, decision in selectors.deploy_queue(deployer, limit=50):
        if decision.allowed:
            return cr.pk
    raise SystemExit("no approved change the deployer may deploy: the gate benchmark needs one")


def _server_env() -> dict:
    return {
        **os.environ,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "COUNTERSIGN_BENCH_ENDPOINTS": "1",
        "THROTTLE_USER_RATE": "1000000/min",
        "THROTTLE_ANON_RATE": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }


def _audit_verify() -> tuple[bool, str]:
    run = subprocess.run([sys.executable, "manage.py", "audit_verify"], cwd=ROOT, capture_output=True, text=True)
    return run.returncode == 0, (run.stdout + run.stderr).strip().splitlines()[-1:]


def _paired(server, locustfile: str, name: str, users: int, plans: list[dict]) -> dict:
    """Floor and benchmark in alternating rounds (floor, benchmark, floor, benchmark…) of
    SECONDS / ROUNDS each, so a change in the machine's load hits both alike; the rounds are
    merged by adding requests and failures and averaging rates and percentiles."""
    from bench import web

    rounds = {"floor": [], name: []}
    for plan in plans:
        path = Path(tempfile.mkstemp(prefix="bench-plan-", suffix=".json")[1])
        path.write_text(json.dumps(plan))
        for target in ("floor", name):
            rounds[target].append(web.locust(locustfile, host=server.url, users=users,
                                             seconds=max(SECONDS // ROUNDS, 5), plan=path, target=target))
    return {f"{name}_{target}": web.merge(runs) for target, runs in rounds.items()}


def main(scale: str, benchmarks: set[str]) -> dict:
    import django

    django.setup()
    from django.db import connection

    from bench import web
    from releases.models import ChangeRequest

    users = _users()
    results = {"scale": scale, "change_requests": ChangeRequest.objects.count()}
    fixtures = _fixtures()
    if fixtures:  # bench_seed's organisation: its keys, its queue, its gate-ready change
        key = fixtures["tokens"]
        gate_change, queue = fixtures["gate_ready"], fixtures["pending"]
        tokens = {"gate": key[PERSONAS["ops"]], "reviewers": [key[PERSONAS["rev"]], key[PERSONAS["rev2"]]],
                  "deployer": key[PERSONAS["ops"]], "floor": key[PERSONAS["ops"]]}
    else:  # seed_demo or another database: make keys, find the work
        gate_change = _gate_change(users["ops"])
        queue = _queue(users["rev"], users["ops"], 6000) if "write" in benchmarks else []
        tokens = {"gate": _token(users["ops"]), "reviewers": [_token(users["rev"]), _token(users["rev2"])],
                  "deployer": _token(users["ops"]), "floor": _token(users["ops"])}
    if "queries" in benchmarks:
        from bench import queries

        keys = {role: (fixtures["tokens"][PERSONAS[role]] if fixtures else _token(users[role]))
                for role in ("ops", "auditor", "sec")}
        results["queries"] = queries.measure(users, keys, gate_change)
    plan = {"tokens": tokens, "gate_change_id": gate_change, "queue": queue}
    results["write_queue"] = len(queue)
    cookies = {}
    if "pages" in benchmarks:
        cookies = {"rev": _session_cookie(users["rev"])}
        page_change = gate_change
    connection.close()

    with web.Server(_server_env(), workers=WORKERS) as server:
        if "gate" in benchmarks:
            results.update(_paired(server, "gate.py", "gate", 8, [plan] * ROUNDS))
        if "write" in benchmarks:
            slices = [{**plan, "queue": queue[n::ROUNDS]} for n in range(ROUNDS)]
            results.update(_paired(server, "write.py", "write", 16, slices))
        if "pages" in benchmarks:
            pages = {
                "dashboard": "/", "dashboard_floor": "/bench/dashboard/",
                "change_page": f"/changes/{page_change}/", "change_page_floor": f"/bench/changes/{page_change}/",
            }
            results.update(web.page_timings({name: server.url + path for name, path in pages.items()},
                                            cookie=cookies["rev"], count=PAGE_REQUESTS))
    if "write" in benchmarks:
        from django.contrib.sessions.models import Session

        Session.objects.filter(session_key__startswith="bench").delete()
        results["audit_verify"] = _audit_verify()
    if "export" in benchmarks:
        from bench import export

        results["export"] = export.run()
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], set(sys.argv[2].split(",")))))
