"""``make soak``: load and soak (issue 7, point 5). 50 concurrent API clients for 60 seconds of mixed
traffic (create, submit, approve, gate, deploy, finish, list) against gunicorn + PostgreSQL, from
127.0.0.1 only, then the books are balanced:

* no 5xx, no dropped connection;
* for every kind of write, the audit events the server recorded equal the successful requests
  (each of these services writes exactly one event), and the rows agree (change requests,
  approvals, deployments) — "writes lost" counts an acknowledged write with no event or row,
  "writes unacknowledged" an event no client was told about;
* ``manage.py audit_verify`` passes.

The database is a throwaway one, dropped and created afresh (its name must contain "soak"):
``--database-url`` or ``SOAK_DATABASE_URL``, else ``DATABASE_URL``'s server with the database
``countersign_soak``. Prints one summary line; ``--json`` writes the figures for tests.

    python bench/soak.py [--users 50] [--duration 60] [--workers 3] [--json out.json] [--keep]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.resilience.servers import BIN, Gunicorn, manage, server_env  # noqa: E402

PERSONAS = ("dev", "dev2", "rev", "rev2", "ops")
# Successful request → the one audit event its service writes (releases/services.py).
WRITES = {
    "create": ("change_request.created",),
    "submit": ("change_request.submitted",),
    "approve": ("change_request.approved", "change_request.approval_recorded"),
    "deploy": ("deployment.started",),
    "finish": ("deployment.succeeded",),
}
WRITE_STATUS = {"create": 201, "submit": 200, "approve": 200, "deploy": 201, "finish": 200}
COUNT_ROWS = (
    "import json\n"
    "from django.db.models import Count\n"
    "from audit.models import AuditEvent\n"
    "from releases.models import Approval, ChangeRequest, Deployment\n"
    "print(json.dumps({'events': dict(AuditEvent.objects.values_list('action').annotate(n=Count('id'))),\n"
    " 'change_requests': ChangeRequest.objects.count(),\n"
    " 'submitted': ChangeRequest.objects.filter(submitted_at__isnull=False).count(),\n"
    " 'approvals': Approval.objects.filter(reviewer__isnull=False, decision='approved').count(),\n"
    " 'deployments': Deployment.objects.count(),\n"
    " 'succeeded': Deployment.objects.filter(state='succeeded').count()}))\n"
)


def soak_database_url(explicit: str | None) -> str:
    url = explicit or os.environ.get("SOAK_DATABASE_URL")
    if not url:
        base = os.environ.get("DATABASE_URL", "")
        if not base.startswith(("postgres://", "postgresql://")):
            sys.exit("soak: needs PostgreSQL: set DATABASE_URL=postgres://… (or SOAK_DATABASE_URL)")
        url = urlunsplit(urlsplit(base)._replace(path="/countersign_soak"))
    name = urlsplit(url).path.lstrip("/")
    if "soak" not in name:
        sys.exit(f"soak: refusing to drop and recreate {name!r}: the soak database's name must contain 'soak'")
    return url


def recreate_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(parts.path.lstrip("/"))))


def counts(env: dict) -> dict:
    return json.loads(manage(env, "shell", "-c", COUNT_ROWS).strip().splitlines()[-1])


def run(users: int, duration: int, workers: int, database_url: str, work: Path) -> dict:
    env = server_env(database_url, work / "var")
    started = time.monotonic()
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_demo")
    tokens = {p: manage(env, "create_api_token", p, "--name", "soak").strip().splitlines()[-1] for p in PERSONAS}
    before = counts(env)
    setup_seconds = time.monotonic() - started

    web = Gunicorn(env, work / "gunicorn.log", workers=workers).start()
    tally_path = work / "tally.json"
    try:
        load_started = time.monotonic()
        locust = subprocess.run(
            [str(BIN / "locust"), "-f", str(ROOT / "bench" / "soak_locust.py"), "--headless", "-u", str(users),
             "-r", str(users), "-t", f"{duration}s", "--stop-timeout", "120", "--host", web.url,
             "--csv", str(work / "locust"), "--only-summary", "--loglevel", "WARNING"],
            cwd=ROOT, env={**env, "SOAK_TOKENS": json.dumps(tokens), "SOAK_TALLY": str(tally_path)},
            capture_output=True, text=True, timeout=duration + 300,
        )
        load_seconds = time.monotonic() - load_started
        web_alive = web.process.poll() is None
    finally:
        web.stop()
    if not tally_path.exists():
        raise RuntimeError(f"locust wrote no tally (exit {locust.returncode}):\n{locust.stderr[-3000:]}")
    tally = {name: Counter({int(k): v for k, v in codes.items()}) for name, codes in json.loads(tally_path.read_text()).items()}
    after = counts(env)
    verify = subprocess.run([sys.executable, str(ROOT / "manage.py"), "audit_verify"], cwd=ROOT, env=env,
                            capture_output=True, text=True)

    requests = sum(sum(c.values()) for c in tally.values())
    server_errors = sum(n for c in tally.values() for code, n in c.items() if code >= 500)
    no_answer = sum(c.get(0, 0) for c in tally.values())
    ok = {op: tally.get(op, Counter()).get(WRITE_STATUS[op], 0) for op in WRITES}
    recorded = {op: sum(after["events"].get(a, 0) - before["events"].get(a, 0) for a in actions)
                for op, actions in WRITES.items()}
    rows = {
        "create": after["change_requests"] - before["change_requests"],
        "submit": after["submitted"] - before["submitted"],
        "approve": after["approvals"] - before["approvals"],
        "deploy": after["deployments"] - before["deployments"],
        "finish": after["succeeded"] - before["succeeded"],
    }
    lost = sum(max(0, ok[op] - min(recorded[op], rows[op])) for op in WRITES)
    unacknowledged = sum(max(0, max(recorded[op], rows[op]) - ok[op]) for op in WRITES)
    refused = {name: {code: n for code, n in c.items() if 0 < code < 500 and code not in (200, 201)}
               for name, c in tally.items()}
    return {
        "users": users, "duration_s": duration, "gunicorn_workers": workers,
        "setup_s": round(setup_seconds, 1), "load_s": round(load_seconds, 1),
        "requests": requests, "rps": round(requests / max(load_seconds, 1e-9), 1),
        "server_errors_5xx": server_errors, "no_answer": no_answer,
        "refused_4xx": {k: v for k, v in refused.items() if v},
        "writes_ok": sum(ok.values()), "writes_by_kind": ok, "audit_events_by_kind": recorded, "rows_by_kind": rows,
        "writes_lost": lost, "writes_unacknowledged": unacknowledged,
        "audit_events_total_new": sum(after["events"].values()) - sum(before["events"].values()),
        "audit_verify_ok": verify.returncode == 0, "audit_verify": (verify.stdout + verify.stderr).strip()[-300:],
        "web_alive_after": web_alive, "locust_exit": locust.returncode,
        "latency": _latency(work / "locust_stats.csv"),
        "tally": {name: dict(c) for name, c in tally.items()},
    }


def _latency(csv_path: Path) -> dict:
    import csv

    if not csv_path.exists():
        return {}
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                return {"p50_ms": float(row["50%"]), "p95_ms": float(row["95%"]), "p99_ms": float(row["99%"]),
                        "max_ms": float(row["Max Response Time"])}
    return {}


def passed(r: dict) -> bool:
    return (r["requests"] > 0 and r["writes_ok"] > 0 and r["server_errors_5xx"] == 0 and r["no_answer"] == 0
            and r["writes_lost"] == 0 and r["writes_unacknowledged"] == 0 and r["audit_verify_ok"]
            and r["web_alive_after"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=int(os.environ.get("SOAK_USERS", "50")))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("SOAK_SECONDS", "60")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("SOAK_WORKERS", "3")))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the soak database for inspection")
    args = parser.parse_args(argv)
    url = soak_database_url(args.database_url)
    recreate_database(url)
    try:
        with tempfile.TemporaryDirectory(prefix="countersign-soak-") as work:
            result = run(args.users, args.duration, args.workers, url, Path(work))
    finally:
        if not args.keep:
            drop_database(url)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    lat = result["latency"]
    print(
        f"soak: {result['users']} users x {result['duration_s']} s on {result['gunicorn_workers']} gunicorn workers | "
        f"requests served {result['requests']} in {result['load_s']} s ({result['rps']}/s) | 5xx {result['server_errors_5xx']} | "
        f"no answer {result['no_answer']} | writes ok {result['writes_ok']} {result['writes_by_kind']} | "
        f"writes lost {result['writes_lost']} | unacknowledged {result['writes_unacknowledged']} | "
        f"refused {result['refused_4xx'] or 0} | p50 {lat.get('p50_ms')} ms p95 {lat.get('p95_ms')} ms | "
        f"audit_verify {'ok' if result['audit_verify_ok'] else 'FAILED: ' + result['audit_verify']} | "
        f"{'PASS' if passed(result) else 'FAIL'}"
    )
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
