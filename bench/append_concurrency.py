"""``make bench``'s appends under concurrency (issue 21): how many audit events a second the chain
takes from 1, 4, 16 and 64 concurrent writers, beside the floor measured in the same run: as many
writers each inserting one row into a plain table per transaction, with no shared lock.

Every append locks the single ``ChainHead`` row (``SELECT … FOR UPDATE``, ``audit/chain.py``) and
holds it until COMMIT, so appends are serialised whatever the number of writers: the line shows
what that costs. Each writer is a thread with its own database connection (the work is waiting on
the lock and the database, not Python), looping for ``seconds``: a transaction doing one
``audit.record`` and COMMIT, as a request does. The floor's writers do one ``INSERT`` into
``bench_concurrency_floor`` (a bigserial key, a timestamp, a small jsonb: the shape of an event
row without the chain) and COMMIT. Per writer count, floor and figure alternate in two halves
(floor, chain, floor, chain) so load on a shared machine hits both alike. The rate is the
transactions committed over the time from the writers' start to the last one's end. Afterwards
``audit.chain.verify`` walks the whole chain: no fork, no gap, whatever the concurrency.

PostgreSQL only (SQLite has one writer at a time by design); a throwaway test database. A writer
count the server's free connections (``max_connections`` less those in use and the reserved ones)
cannot hold is reported as not run. ``BENCH_CONCURRENCY_WRITERS`` (default ``1,4,16,64``) and
``BENCH_CONCURRENCY_SECONDS`` (per writer count and side, default 5). Prints one JSON line.
"""
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# The documented target (docs/performance.md): the lock serialises appends, so more writers cannot
# add throughput beyond the lock's; they must not lose it either (no collapse under contention).
MIN_RATIO_TO_ONE_WRITER = 0.8
FLOOR_TABLE = "bench_concurrency_floor"


def free_connections() -> int:
    """Connections a client may still open: max_connections less the reserved and those in use."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_connections')::int - current_setting("
                       "'superuser_reserved_connections')::int - (SELECT count(*) FROM pg_stat_activity "
                       "WHERE backend_type = 'client backend')")
        return cursor.fetchone()[0]


def append(i: int) -> None:
    from django.db import transaction

    import audit

    with transaction.atomic():
        audit.record("bench.concurrency", data={"i": i})


def insert(i: int) -> None:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {FLOOR_TABLE} (created_at, data) VALUES (now(), %s)",  # nosec B608
                       [json.dumps({"i": i})])


def hammer(work, writers: int, seconds: float) -> tuple[int, float]:
    """``writers`` threads, each on its own connection, calling ``work`` for ``seconds``:
    (transactions committed, seconds from their start to the last one's end)."""
    from django.db import connection

    ready = threading.Barrier(writers + 1)
    counts, errors = [0] * writers, []

    def writer(k: int) -> None:
        try:
            connection.ensure_connection()
            ready.wait()
            deadline, n = time.perf_counter() + seconds, 0
            while time.perf_counter() < deadline:
                work(n)
                n += 1
            counts[k] = n
        except Exception as exc:  # noqa: BLE001 - raised again in the caller's thread below
            errors.append(exc)
            ready.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass  # a writer could not start: its error is raised below
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return sum(counts), elapsed


def point(writers: int, seconds: float) -> dict:
    """One writer count: floor and chain alternating in two halves."""
    done = {append: [0, 0.0], insert: [0, 0.0]}
    for work in (insert, append, insert, append):
        count, elapsed = hammer(work, writers, seconds / 2)
        done[work][0] += count
        done[work][1] += elapsed
    return {"writers": writers, "appends": done[append][0], "appends_per_second": done[append][0] / done[append][1],
            "inserts": done[insert][0], "inserts_per_second": done[insert][0] / done[insert][1]}


def run() -> dict:
    from django.db import connection

    from audit import chain
    from audit.models import ChainHead

    if connection.vendor != "postgresql":
        raise SystemExit("bench/append_concurrency.py needs PostgreSQL (DATABASE_URL=postgres://…)")
    writers = [int(w) for w in os.environ.get("BENCH_CONCURRENCY_WRITERS", "1,4,16,64").split(",") if w.strip()]
    seconds = float(os.environ.get("BENCH_CONCURRENCY_SECONDS", "5"))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, "
                       "data jsonb NOT NULL)")
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    points = []
    try:
        append(-1)  # the chain head exists before the writers race to create it
        for count in writers:
            free = free_connections()
            points.append(point(count, seconds) if count <= free else
                          {"writers": count, "not_run": f"needs {count} connections, the server has {free} free"})
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {FLOOR_TABLE}")
    checked, broken = chain.verify()
    return {"vendor": connection.vendor, "seconds": seconds, "max_connections": max_connections,
            "min_ratio": MIN_RATIO_TO_ONE_WRITER, "points": points,
            "verified": broken is None and checked == ChainHead.objects.get(pk=1).sequence,
            "chain_problem": str(broken) if broken else "", "events": checked}


def lines(r: dict) -> list[tuple[str, bool]]:
    """(line, ok) per writer count; ratios to the first count run (1 writer by default)."""
    out, base = [], next((p for p in r["points"] if "not_run" not in p), None)
    for p in r["points"]:
        if "not_run" in p:
            out.append((f"[{p['writers']} writers] audit appends under concurrency: could not run ({p['not_run']}; "
                        f"max_connections {r['max_connections']}) | MISSED", False))
            continue
        scale, floor_scale = p["appends_per_second"] / base["appends_per_second"], (
            p["inserts_per_second"] / base["inserts_per_second"])
        ok = scale >= r["min_ratio"] and r["verified"]
        out.append((f"[{p['writers']} writer{'s' if p['writers'] > 1 else ''}] audit appends, one audit.record + COMMIT a transaction ({r['vendor']}, "
                    f"{r['seconds']:g} s): {p['appends_per_second']:,.0f} appends/s = {scale:.2f} x {base['writers']} "
                    f"writer{'s' if base['writers'] > 1 else ''}, chain {'verifies' if r['verified'] else 'BROKEN'} "
                    f"({r['events']:,} events) | floor (as many writers, one-row INSERT into a plain table + COMMIT): "
                    f"{p['inserts_per_second']:,.0f} tx/s = {floor_scale:.2f} x {base['writers']} | ratio "
                    f"{p['appends_per_second'] / p['inserts_per_second']:.2f} | target >= {r['min_ratio']} x "
                    f"{base['writers']} writer{'s' if base['writers'] > 1 else ''}'s appends/s, chain verifies | "
                    f"{'OK' if ok else 'MISSED'}", ok))
    return out


if __name__ == "__main__":
    from bench.throwaway import measure_in_throwaway_database

    measure_in_throwaway_database(run)
