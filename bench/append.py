"""``make bench``'s append-path benchmark (issue 20): what keeping the Merkle tree costs each audit
event, at a small and a large log, beside the floor measured in the same run: the same append with
the tree's maintenance switched off (``audit.tree.grow`` answering "nothing to add").

Each scale is a log of ``n`` events whose tree is in step (``n`` a power of two, so its perfect
subtrees are exactly the node positions ``0 .. 2n - 2``): events and nodes are written straight into
the tables with one ``INSERT … SELECT`` each (stand-in hashes: this measures the append, which reads
only the chain head), then ``audit.record`` appends events, alternately with and without the tree
(so drift on a shared machine hits both alike), each timed from taking the chain head's lock to
writing the head back: the work done under the lock. The commit is left out of the timing (its
fsync, the same either way, would drown the difference on a busy machine). The figure is the
median per-event time of each; the tree's cost is their difference, which must stay
under a fixed amount at every scale (``MAX_COST_STATEMENTS`` times the floor's time per statement)
and must not grow with the log (``MAX_GROWTH_STATEMENTS``). The statements
per append are counted too: the tree adds exactly one (the bulk INSERT of the nodes it completes).

Run by bench/run.py in a throwaway test database (PostgreSQL when DATABASE_URL names one, else
SQLite); prints one JSON line. ``BENCH_APPEND_SIZES`` (default ``small=1024,large=1048576``),
``BENCH_APPEND_ROUNDS`` (transactions, default 10) and ``BENCH_APPEND_BATCH`` (appends in each, default 40).
"""
import os
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# The documented bounds (docs/performance.md), in units of the floor's own cost per statement (its
# time per append over its statements per append: one round trip to the database on this machine,
# so the bound holds on a fast machine and a loaded one alike). The tree may add at most
# MAX_COST_STATEMENTS of them to an append, and its cost at the large log may exceed the small
# one's by at most MAX_GROWTH_STATEMENTS (noise, a deeper index): a fixed cost, not one that grows.
MAX_COST_STATEMENTS = 1.5
MAX_GROWTH_STATEMENTS = 0.5

FILL = {
    "postgresql": (
        "INSERT INTO audit_auditevent (sequence, created_at, actor_id, actor_username, action, target_type, "
        "target_id, target_repr, environment, team, ip, user_agent, request_id, data, prev_hash, hash) "
        "SELECT i, now(), NULL, 'bench', 'bench.filled', '', '', '', '', '', NULL, '', '', '{}'::jsonb, "
        "lpad((i - 1)::text, 64, '0'), lpad(i::text, 64, '0') FROM generate_series(1, %s::bigint) AS i",
        "INSERT INTO audit_merklenode (position, hash) SELECT p, lpad(p::text, 64, 'f') "
        "FROM generate_series(0, %s::bigint) AS p",
    ),
    "sqlite": (
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %s) "
        "INSERT INTO audit_auditevent (sequence, created_at, actor_id, actor_username, action, target_type, "
        "target_id, target_repr, environment, team, ip, user_agent, request_id, data, prev_hash, hash) "
        "SELECT i, '2026-01-01 00:00:00', NULL, 'bench', 'bench.filled', '', '', '', '', '', NULL, '', '', '{}', "
        "printf('%%064d', i - 1), printf('%%064d', i) FROM s",
        "WITH RECURSIVE s(p) AS (SELECT 0 UNION ALL SELECT p + 1 FROM s WHERE p < %s) "
        "INSERT INTO audit_merklenode (position, hash) SELECT p, printf('%%064d', p) FROM s",
    ),
}


def _sizes() -> list[tuple[str, int]]:
    raw = os.environ.get("BENCH_APPEND_SIZES", "small=1024,large=1048576")
    sizes = [(name.strip(), int(value)) for name, value in (item.split("=") for item in raw.split(",") if item)]
    for name, size in sizes:
        if size < 1 or size & (size - 1):
            raise SystemExit(f"BENCH_APPEND_SIZES: {name}={size} is not a power of two")
    return sizes


def fill(size: int) -> float:
    """An empty log replaced by ``size`` events and the ``2 size - 1`` nodes of their tree, in step."""
    from django.db import connection, transaction

    from audit.models import AuditEvent, ChainHead, MerkleNode

    events, nodes = FILL[connection.vendor]
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        # A throwaway database, the purge allowed in this process only (as the test suite does).
        if connection.vendor == "postgresql":
            cursor.execute("TRUNCATE audit_auditevent, audit_merklenode CASCADE")
        else:
            for model in (AuditEvent, MerkleNode):
                cursor.execute(f"DELETE FROM {model._meta.db_table}")  # nosec B608
        cursor.execute(events, [size])
        cursor.execute(nodes, [2 * size - 2])
        ChainHead.objects.update_or_create(pk=1, defaults={
            "sequence": size, "hash": f"{size:064d}", "tree_size": size, "compact_range": ["ab" * 32]})
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
            cursor.execute("ANALYZE audit_merklenode")
    return time.perf_counter() - started


def _in_step() -> None:
    """After appends without the tree: the head's tree caught up with stand-in hashes (the nodes of
    the leaves skipped are not needed by later appends, which complete only new positions)."""
    from audit.models import ChainHead

    head = ChainHead.objects.get(pk=1)
    ChainHead.objects.filter(pk=1).update(tree_size=head.sequence,
                                          compact_range=["ab" * 32] * bin(head.sequence).count("1"))


def _append(merkle: bool, i: int) -> tuple[float, int]:
    """One ``audit.record`` in the open transaction: (seconds, statements)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import audit
    from audit import tree

    grow = tree.grow if merkle else (lambda head, events: {})
    with mock.patch.object(tree, "grow", grow), CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        audit.record("bench.append", data={"i": i})
        elapsed = time.perf_counter() - started
    if not merkle:
        _in_step()  # not timed
    return elapsed, len(queries.captured_queries)


def _rounds(rounds: int, batch: int) -> tuple[list[float], list[float], dict]:
    """``rounds`` transactions of ``batch`` appends, alternating with and without the tree append
    by append (so load on a shared machine hits both alike)."""
    from django.db import transaction

    samples, queries = {True: [], False: []}, {}
    for r in range(rounds):
        with transaction.atomic():
            for i in range(batch):
                merkle = (i + r) % 2 == 0
                seconds, statements = _append(merkle, i)
                samples[merkle].append(seconds)
                queries[merkle] = statements
    return samples[True], samples[False], queries


def run() -> dict:
    from django.db import connection

    from audit import tree
    from audit.models import ChainHead

    rounds = int(os.environ.get("BENCH_APPEND_ROUNDS", "10"))
    batch = int(os.environ.get("BENCH_APPEND_BATCH", "40"))
    result = {"vendor": connection.vendor, "rounds": rounds, "batch": batch, "max_cost_statements": MAX_COST_STATEMENTS,
              "max_growth_statements": MAX_GROWTH_STATEMENTS, "scales": []}
    for name, size in _sizes():
        seconds = fill(size)
        _rounds(2, 10)  # warm up: caches, the statements' plans
        with_tree, without, queries = _rounds(rounds, batch)
        head = ChainHead.objects.get(pk=1)
        with_us, without_us = statistics.median(with_tree) * 1e6, statistics.median(without) * 1e6
        result["scales"].append({
            "scale": name, "events": size, "fill_seconds": seconds, "appended": head.sequence - size,
            "with_us": with_us, "without_us": without_us, "cost_us": with_us - without_us,
            "statement_us": without_us / max(queries[False], 1),
            "queries_with": queries[True], "queries_without": queries[False], "in_step": tree.in_step(head),
        })
    return result


def lines(r: dict) -> list[tuple[str, bool]]:
    """(line, ok) per scale, and one comparing the scales."""
    out = []
    for s in r["scales"]:
        bound = r["max_cost_statements"] * s["statement_us"]
        ok = s["cost_us"] <= bound and s["queries_with"] == s["queries_without"] + 1 and s["in_step"]
        out.append((f"[{s['scale']}] audit append with the Merkle tree at {s['events']:,} events ({r['vendor']}, "
                    f"under the chain lock, median of {r['rounds'] * r['batch'] // 2} appends): {s['with_us']:.0f} "
                    f"us/event, {s['queries_with']} statements | floor (the same append, tree maintenance off): "
                    f"{s['without_us']:.0f} us/event, {s['queries_without']} statements = {s['statement_us']:.0f} "
                    f"us/statement | ratio {s['with_us'] / s['without_us']:.2f}, tree cost {s['cost_us']:.0f} "
                    f"us/event = {s['cost_us'] / s['statement_us']:.2f} statements | target one statement more, "
                    f"tree cost <= {r['max_cost_statements']} x the floor's statement | {'OK' if ok else 'MISSED'}",
                    ok))
    if len(r["scales"]) >= 2:
        small, large = r["scales"][0], r["scales"][-1]
        growth = (large["cost_us"] - small["cost_us"]) / small["statement_us"]
        ok = growth <= r["max_growth_statements"] and large["queries_with"] == small["queries_with"]
        out.append((f"audit append's tree cost, {small['scale']} ({small['events']:,} events) to {large['scale']} "
                    f"({large['events']:,}): {small['cost_us']:.0f} -> {large['cost_us']:.0f} us/event "
                    f"({growth:+.2f} statements), statements {small['queries_with']} -> {large['queries_with']} | "
                    f"floor — | target the same statements, growth <= {r['max_growth_statements']} x the small "
                    f"floor's statement | {'OK' if ok else 'MISSED'}", ok))
    return out


if __name__ == "__main__":
    from bench.throwaway import measure_in_throwaway_database

    measure_in_throwaway_database(run, purge_allowed=True)
