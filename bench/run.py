"""``make bench``: every benchmark of issue 6 beside its floor, measured in the same run, one line
per figure: the figure, the floor, the ratio, the target, OK or MISSED.

On PostgreSQL (DATABASE_URL set: the shape that counts) each data scale gets a database of its
own, ``<BENCH_DB_PREFIX>_<scale>``, cloned from a pristine copy ``…_<scale>_seed`` that
``bench_seed`` loads once and later runs reuse (the write benchmark consumes the approval queue,
so every run starts from the same data). ``BENCH_TEMPLATE_<SCALE>=dbname`` clones an already
seeded database instead of seeding. Per scale, ``bench/suite.py`` serves the app with gunicorn
and drives locust against it in separate processes. The campaign benchmark runs in a throwaway
test database; the SOX export runs at the largest scale. Without PostgreSQL only the campaign
runs (the served benchmarks and COPY need PostgreSQL).

The audit trail benchmark (``audit``, bench/audit_pages.py) pages ``audit-events/`` over
BENCH_AUDIT_EVENTS events (default 10 million) in a database of its own, ``<BENCH_DB_PREFIX>_audit``,
filled once and reused.

The append-path benchmark (``append``, bench/append.py) times ``audit.record`` with and without the
Merkle tree's maintenance at a small and a large log (BENCH_APPEND_SIZES) in a throwaway test
database, on PostgreSQL when DATABASE_URL names one, else SQLite.

The audit stream benchmark (``stream``, bench/stream.py: SIEM delivery against the same bytes
written directly) runs in a throwaway test database too; appends under concurrency
(``concurrency``, bench/append_concurrency.py: 1 … 64 writers on the chain's lock) on PostgreSQL only.
The SCIM first sync (``scim``, bench/identity_sync.py: BENCH_SCIM_USERS users, default 10000, and
BENCH_SCIM_GROUPS groups, default 500) and the attestations' issue and verify (``attestations``,
bench/attestations.py: BENCH_ATTESTATIONS rounds, default 1000) run in a throwaway test database too.

The GitHub lines (``webhooks`` and ``protection``, bench/integrations.py) deliver signed push and
deployment_protection_rule events in process in a throwaway test database (BENCH_WEBHOOK_EVENTS,
BENCH_PROTECTION_EVENTS), PostgreSQL when DATABASE_URL names one, else SQLite.

Environment: BENCH_SCALES (default ``small,large``), BENCH_ONLY (any of gate, write, pages,
queries, campaign, export, audit, append, stream, concurrency, webhooks, protection, scim, attestations; default
all), BENCH_SECONDS (load per run, default 20), BENCH_WORKERS (gunicorn workers, default 3), BENCH_GRANTS (campaign
size, default 100000),
BENCH_DB_PREFIX (default ``countersign_bench``), BENCH_PLOT (PNG path, default
docs/img/performance.png; ``-`` for none).
"""
import importlib
import json
import math
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

SERVED = ("gate", "write", "pages", "queries")
ALL = (*SERVED, "campaign", "export", "audit", "append", "stream", "concurrency", "webhooks", "protection", "scim",
       "attestations")
SCALE_ORDER = ("small", "medium", "large")


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- databases ------------------------------------------------------------------------------------


def _admin_sql(base_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Run ``sql`` on the server's ``postgres`` database (CREATE/DROP DATABASE need autocommit)."""
    import psycopg

    from dj_database_url import parse

    cfg = parse(base_url)
    with psycopg.connect(host=cfg["HOST"] or "127.0.0.1", port=cfg["PORT"] or 5432, user=cfg["USER"],
                         password=cfg["PASSWORD"] or None, dbname="postgres", autocommit=True) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


def _url_for(base_url: str, name: str) -> str:
    head, _, _ = base_url.rpartition("/")
    return f"{head}/{name}"


def _exists(base_url: str, name: str) -> bool:
    return bool(_admin_sql(base_url, "SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


def _clone(base_url: str, source: str, target: str, *, attempts: int = 20) -> None:
    """CREATE DATABASE … TEMPLATE, which needs nobody connected to ``source``: wait for them."""
    import psycopg

    _admin_sql(base_url, f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
    for attempt in range(attempts):
        try:
            _admin_sql(base_url, f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
            return
        except psycopg.errors.ObjectInUse:
            if attempt == attempts - 1:
                raise
            print(f"    {source} is in use; waiting to copy it", flush=True)
            time.sleep(15)


def _manage(url: str, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, "DATABASE_URL": url},
                   check=True)


def prepare_scale(base_url: str, prefix: str, scale: str) -> str:
    """The working database for ``scale``, freshly cloned from its seeded pristine copy."""
    pristine, work = f"{prefix}_{scale}_seed", f"{prefix}_{scale}"
    if not _exists(base_url, pristine):
        template = os.environ.get(f"BENCH_TEMPLATE_{scale.upper()}")
        if template:
            print(f"==> {scale}: copying the seeded database {template} to {pristine}", flush=True)
            _clone(base_url, template, pristine)
        else:
            print(f"==> {scale}: seeding {pristine} (bench_seed --scale {scale}; large takes ~15 min)", flush=True)
            _admin_sql(base_url, f'CREATE DATABASE "{pristine}"')
            try:
                _manage(_url_for(base_url, pristine), "migrate", "--noinput", "-v0")
                _manage(_url_for(base_url, pristine), "bench_seed", "--scale", scale)
            except BaseException:
                _admin_sql(base_url, f'DROP DATABASE IF EXISTS "{pristine}" WITH (FORCE)')
                raise
    _manage(_url_for(base_url, pristine), "migrate", "--noinput", "-v0")  # code may have moved on
    started = time.perf_counter()
    _clone(base_url, pristine, work)
    print(f"==> {scale}: {work} cloned from {pristine} in {time.perf_counter() - started:.0f} s", flush=True)
    return _url_for(base_url, work)


# --- running --------------------------------------------------------------------------------------


def bench_env(url: str) -> dict:
    """The settings the served app runs with: production's (DEBUG off), the bench's floors on,
    throttling out of the way, tasks queued on Redis when a broker is configured."""
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "SIGNING_KEY_FILE": str(Path(os.environ.get("SIGNING_KEY_FILE", ROOT / "var" / "signing_key.pem"))),
        "SIGNING_KEY_AUTOGENERATE": "1",
        "COUNTERSIGN_BENCH_ENDPOINTS": "1",
        "THROTTLE_USER_RATE": "1000000/min",
        "THROTTLE_ANON_RATE": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }


def run_suite(url: str, scale: str, benchmarks: list[str]) -> dict:
    started = time.perf_counter()
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "suite.py"), scale, ",".join(benchmarks)],
                         cwd=ROOT, env=bench_env(url), capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"bench suite failed at {scale}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - started
    return result


def run_campaign(url: str | None) -> dict:
    env = {**os.environ, **({"DATABASE_URL": url} if url else {})}
    code = ("import json, os, sys; sys.path.insert(0, '.'); os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
            "'config.settings'); import django; django.setup(); from django.db import connection; "
            "from bench import campaign; old = connection.creation.create_test_db(verbosity=0, autoclobber=True); "
            "r = campaign.run(int(os.environ.get('BENCH_GRANTS', '100000'))); "
            "connection.creation.destroy_test_db(old, verbosity=0); print(json.dumps(r))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr[-4000:], file=sys.stderr)
        raise SystemExit("campaign benchmark failed")
    return json.loads(run.stdout.strip().splitlines()[-1])


def run_audit_pages(base_url: str, prefix: str) -> dict:
    """bench/audit_pages.py in ``<prefix>_audit`` (created and migrated if missing, filled once)."""
    name = f"{prefix}_audit"
    if not _exists(base_url, name):
        _admin_sql(base_url, f'CREATE DATABASE "{name}"')
    url = _url_for(base_url, name)
    _manage(url, "migrate", "--noinput", "-v0")
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "audit_pages.py")], cwd=ROOT, env=bench_env(url),
                         capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr[-4000:], file=sys.stderr)
        raise SystemExit("audit trail benchmark failed")
    return json.loads(run.stdout.strip().splitlines()[-1])


def run_append(url: str | None) -> dict:
    """bench/append.py in a throwaway test database (on ``url``'s server, else SQLite)."""
    env = {**os.environ, **({"DATABASE_URL": url} if url else {})}
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "append.py")], cwd=ROOT, env=env, capture_output=True,
                         text=True)
    if run.returncode != 0:
        print(run.stderr[-4000:], file=sys.stderr)
        raise SystemExit("append-path benchmark failed")
    return json.loads(run.stdout.strip().splitlines()[-1])


def run_script(script: str, url: str | None, args: tuple[str, ...] = ()) -> dict:
    """bench/<script>.py ``args`` (a throwaway test database on ``url``'s server, else SQLite): its JSON line."""
    env = {**os.environ, **({"DATABASE_URL": url} if url else {})}
    run = subprocess.run([sys.executable, str(ROOT / "bench" / f"{script}.py"), *args], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"bench/{script}.py failed")
    return json.loads(run.stdout.strip().splitlines()[-1])


def audit_pages_line(r: dict) -> tuple[str, bool]:
    ratio = _ratio(r["deep_ms"], r["first_ms"])
    ok = r["first_queries"] == r["deep_queries"] and ratio <= 1.5
    return (f"audit-events/ at {r['events']:,} events ({r['page']} a page): first page p50 {r['first_ms']:.1f} ms, "
            f"{r['first_queries']} queries; page {r['depth']:,} (from #{r['deep_first_sequence']:,}) p50 "
            f"{r['deep_ms']:.1f} ms, {r['deep_queries']} queries | floor (that page's SQL alone): "
            f"p50 {r['floor_ms']:.1f} ms | ratio page {r['depth']:,} / first {ratio:.2f} | target the same queries, "
            f"<= 1.5 x the first page | {_ok(ok)}", ok)


# --- reporting ------------------------------------------------------------------------------------


def _ok(flag: bool) -> str:
    return "OK" if flag else "MISSED"


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")


def lines_for_scale(r: dict) -> list[tuple[str, bool]]:
    """(line, ok) for each figure measured at one scale."""
    s, out = f"[{r['scale']}]", []
    if "gate_gate" in r:
        g, f = r["gate_gate"], r["gate_floor"]
        ratio = _ratio(g["rps"], f["rps"])
        ok = ratio >= 0.5 and g["failures"] == 0
        out.append((f"{s} gate decision GET gate/ (8 clients): {g['rps']:.1f} req/s, p95 {g['p95_ms']:.0f} ms, "
                    f"{g['failures']} errors | floor (bare DRF row by pk, same auth): {f['rps']:.1f} req/s, "
                    f"p95 {f['p95_ms']:.0f} ms | ratio {ratio:.2f} | target >= 0.5 x floor | {_ok(ok)}", ok))
    if "write_write" in r:
        w, f = r["write_write"], r["write_floor"]
        ratio = _ratio(w["rps"], f["rps"])
        verified = r.get("audit_verify", [False])[0]
        ok = ratio >= 0.25 and w["failures"] == 0 and w["requests"] > 0 and verified
        calls = ", ".join(f"{n} {v['requests']}" for n, v in w["by_name"].items())
        out.append((f"{s} approve + deploy (16 clients): {w['rps']:.1f} req/s ({calls}), p95 {w['p95_ms']:.0f} ms, "
                    f"{w['failures']} errors, audit_verify {'passes' if verified else 'FAILS'} | floor (insert one "
                    f"row): {f['rps']:.1f} req/s | ratio {ratio:.2f} | target >= 0.25 x floor, zero errors, chain "
                    f"verifies | {_ok(ok)}", ok))
    for page, label in (("dashboard", "reviewer dashboard"), ("change_page", "change request page")):
        if page in r:
            p, f = r[page], r[f"{page}_floor"]
            ratio = _ratio(p["p50_ms"], f["p50_ms"])
            ok = ratio <= 3
            out.append((f"{s} {label} latency: p50 {p['p50_ms']:.0f} ms, p95 {p['p95_ms']:.0f} ms | floor (template, "
                        f"same rows, one query): p50 {f['p50_ms']:.0f} ms, p95 {f['p95_ms']:.0f} ms | ratio "
                        f"{ratio:.2f} | target <= 3 x floor | {_ok(ok)}", ok))
    if "export" in r:
        e = r["export"]
        if "error" in e:
            out.append((f"{s} SOX export: could not run ({' '.join(e['error'])}) | target >= 0.3 x COPY, "
                        f"peak < 300 MB | MISSED", False))
        else:
            rate, floor = e["rows"] / e["seconds"], e["floor"]["rows"] / e["floor"]["seconds"]
            ratio = rate / floor
            ok = ratio >= 0.3 and e["peak_mb"] < 300
            out.append((f"{s} SOX export ({e['audit_events']} audit events, {e['deployments']} deployments in the "
                        f"database): {e['rows']} rows in {e['seconds']:.1f} s = {rate:.0f} rows/s, peak RSS "
                        f"{e['peak_mb']:.0f} MB | floor (COPY TO STDOUT, same populations): {e['floor']['rows']} rows"
                        f" in {e['floor']['seconds']:.1f} s = {floor:.0f} rows/s | ratio {ratio:.2f} | target "
                        f">= 0.3 x floor, peak < 300 MB | {_ok(ok)}", ok))
    return out


def query_lines(results: list[dict]) -> list[tuple[str, bool]]:
    measured = [r for r in results if "queries" in r]
    if len(measured) < 2:
        return [(f"[{r['scale']}] queries per request: {r['queries']} (one scale: nothing to compare)", True)
                for r in measured]
    out = []
    for name in measured[0]["queries"]:
        counts = {r["scale"]: r["queries"].get(name) for r in measured}
        ok = len(set(counts.values())) == 1 and min(counts.values()) >= 0
        shown = ", ".join(f"{k} {v}" for k, v in counts.items())
        out.append((f"queries per request, {name}: {shown} | floor — | target the same count at every size | "
                    f"{_ok(ok)}", ok))
    return out


def campaign_line(r: dict) -> tuple[str, bool]:
    return (f"{r['benchmark']}: {r['seconds']:.2f} s, {r['queries']} queries, peak {r['peak_mb']:.0f} MB | floor "
            f"({r['floor']}): {r['floor_seconds']:.2f} s | ratio {r['ratio']:.2f} | target {r['target']} | "
            f"{_ok(r['ok'])}", r["ok"])


def plot(results: list[dict], path: Path) -> None:
    """Gate p95 and dashboard latency against data size: the lines should stay flat."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if "gate_gate" in r or "dashboard" in r]
    if not rows:
        return
    labels = [f"{r['scale']}\n{r['change_requests']:,} changes" for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    series = [
        ("gate/ p95 (8 clients)", [r.get("gate_gate", {}).get("p95_ms", math.nan) for r in rows], "o-"),
        ("gate floor p95", [r.get("gate_floor", {}).get("p95_ms", math.nan) for r in rows], "o:"),
        ("dashboard p50 (1 client)", [r.get("dashboard", {}).get("p50_ms", math.nan) for r in rows], "s-"),
        ("dashboard p95 (1 client)", [r.get("dashboard", {}).get("p95_ms", math.nan) for r in rows], "s--"),
        ("dashboard floor p50", [r.get("dashboard_floor", {}).get("p50_ms", math.nan) for r in rows], "s:"),
    ]
    for name, values, style in series:
        ax.plot(labels, values, style, label=name)
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(bottom=0)
    ax.set_title("Countersign latency against data size (gunicorn, PostgreSQL, same run)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    only = _env_list("BENCH_ONLY", ",".join(ALL))
    unknown = set(only) - set(ALL)
    if unknown:
        raise SystemExit(f"unknown benchmarks in BENCH_ONLY: {sorted(unknown)}; choose from {ALL}")
    scales = sorted(_env_list("BENCH_SCALES", "small,large"), key=lambda s: SCALE_ORDER.index(s))
    base_url = os.environ.get("DATABASE_URL", "")
    results, lines = [], []
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if base_url.startswith("postgres"):
        prefix = os.environ.get("BENCH_DB_PREFIX", "countersign_bench")
        for scale in scales:
            wanted = [b for b in SERVED if b in only]
            if "export" in only and scale == scales[-1]:
                wanted.append("export")
            if not wanted:
                continue
            try:
                url = prepare_scale(base_url, prefix, scale)
            except Exception as exc:  # one scale's data missing must not lose the others' figures
                lines.append((f"[{scale}] could not prepare the {scale} database: {exc} | MISSED", False))
                print(lines[-1][0], flush=True)
                continue
            print(f"==> {scale}: running {', '.join(wanted)}", flush=True)
            result = run_suite(url, scale, wanted)
            results.append(result)
            for line, _ in lines_for_scale(result):
                print(line, flush=True)
            lines.extend(lines_for_scale(result))
        lines.extend(query_lines(results))
        if "audit" in only:
            print("==> audit trail pages over", os.environ.get("BENCH_AUDIT_EVENTS", "10000000"), "events", flush=True)
            audit_pages = run_audit_pages(base_url, prefix)
            lines.append(audit_pages_line(audit_pages))
            print(lines[-1][0], flush=True)
            results.append({"scale": "audit", "audit_pages": audit_pages})
        campaign_url = _url_for(base_url, prefix)
    else:
        print("note: DATABASE_URL is not PostgreSQL; the served benchmarks, COPY, the SOX export, the audit "
              "trail pages and appends under concurrency need it. Running those that work on SQLite only.")
        campaign_url = None
    if "campaign" in only:
        print("==> campaign over", os.environ.get("BENCH_GRANTS", "100000"), "grants", flush=True)
        campaign = run_campaign(campaign_url)
        lines.append(campaign_line(campaign))
        results.append({"scale": "campaign", "campaign": campaign})
    if "append" in only:
        from bench import append

        print("==> audit append with and without the Merkle tree", flush=True)
        appended = run_append(campaign_url)
        for line in append.lines(appended):
            lines.append(line)
            print(line[0], flush=True)
        results.append({"scale": "append", "append": appended})
    # Issue 21: the audit stream, the SCIM first sync, the attestations (either database) and appends
    # under concurrency (PostgreSQL only).
    for name, script in (("stream", "stream"), ("concurrency", "append_concurrency"), ("scim", "identity_sync"),
                         ("attestations", "attestations")):
        if name not in only or (name == "concurrency" and campaign_url is None):
            continue  # without PostgreSQL, the note above says what is not run
        print(f"==> {name} (bench/{script}.py)", flush=True)
        module = importlib.import_module(f"bench.{script}")
        measured = run_script(script, campaign_url)
        for line in module.lines(measured):
            lines.append(line)
            print(line[0], flush=True)
        results.append({"scale": name, name: measured})
    github = [name for name in ("webhooks", "protection") if name in only]
    if github:
        from bench import integrations

        print(f"==> GitHub {' and '.join(github)} (in process)", flush=True)
        measured = run_script("integrations", campaign_url, tuple(github))
        for line in integrations.lines(measured):
            lines.append(line)
            print(line[0], flush=True)
        results.append({"scale": "github", "github": measured})
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record = {"started": started, "nproc": os.cpu_count(), "results": results, "lines": [line for line, _ in lines]}
    (out / f"results-{stamp}.json").write_text(json.dumps(record, indent=2))
    plot_path = os.environ.get("BENCH_PLOT", str(ROOT / "docs" / "img" / "performance.png"))
    if plot_path != "-":
        plot(results, Path(plot_path))
    print(f"\n==> Results ({started}; details in var/bench/results-{stamp}.json)")
    for line, _ in lines:
        print(line)
    missed = sum(1 for _, ok in lines if not ok)
    print(f"{len(lines) - missed} figures on target, {missed} missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
