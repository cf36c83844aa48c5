"""``make bench``'s audit trail benchmark (issue 19): the first and the 1,000th keyset page of
``GET /api/v1/audit-events/`` (100 events a page) over a long trail, in-process with the test
client, beside the floor: the page's own SQL run bare at the same depth.

The trail is ``BENCH_AUDIT_EVENTS`` events (default 10,000,000), written straight into the table
with ``generate_series`` (a few minutes per 10 million; reused by later runs while the database
holds that many). Their hashes are stand-ins, not a chain: this measures paging, which never reads
a hash, and the database is a throwaway one of its own. PostgreSQL only.

Run by bench/run.py in ``<BENCH_DB_PREFIX>_audit``; prints one JSON line.
"""
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

BATCH = 1_000_000
PAGE = 100
DEPTH = 1000  # the page compared with the first
REPEAT = 25

FILL_SQL = """
INSERT INTO audit_auditevent (sequence, created_at, actor_id, actor_username, action, target_type, target_id,
                              target_repr, environment, team, ip, user_agent, request_id, data, prev_hash, hash)
SELECT i, now() - make_interval(secs => (%(last)s::bigint - i)::double precision), NULL, 'bench',
       (ARRAY['change_request.approved', 'deployment.started', 'role.granted', 'alert.raised'])[1 + i %% 4],
       'releases.changerequest', (i %% 100000)::text, 'bench change', (ARRAY['staging', 'production'])[1 + i %% 2],
       'payments', NULL, '', '', '{}'::jsonb, md5((i - 1)::text) || md5((i - 1)::text || 'x'),
       md5(i::text) || md5(i::text || 'x')
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
"""


def fill(target: int) -> tuple[int, float]:
    """Top the trail up to ``target`` events (beyond what bench events are there). Returns (events
    now, seconds spent)."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(sequence), 0) FROM audit_auditevent")
        have = cursor.fetchone()[0]
        while have < target:
            last = min(have + BATCH, target)
            with transaction.atomic():
                cursor.execute(FILL_SQL, {"first": have + 1, "last": last})
                # Raw events, no chain and no Merkle tree (an empty one: this database is for reading
                # pages, it cannot be sealed); the columns have no database defaults.
                cursor.execute("INSERT INTO audit_chainhead (id, sequence, hash, tree_size, compact_range) "
                               "VALUES (1, %s, %s, 0, '[]') ON CONFLICT (id) "
                               "DO UPDATE SET sequence = EXCLUDED.sequence, hash = EXCLUDED.hash",
                               [last, "0" * 64])
            have = last
            print(f"    {have:,} audit events", file=sys.stderr, flush=True)
        cursor.execute("ANALYZE audit_auditevent")
    return have, time.perf_counter() - started


def _reader() -> str:
    """An API key of a compliance reader (view_audit), made once."""
    from django.contrib.auth import get_user_model

    from governance import services

    user, _ = get_user_model().objects.get_or_create(username="bench-trail-reader", defaults={"is_superuser": True})
    _, key = services.api_token_create(actor=user, user=user, name="bench audit pages")
    return key


def _timed(client, url, headers, repeat: int) -> tuple[float, int]:
    """(median ms of ``repeat`` requests, queries of one) for ``url``."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url, **headers)
    connection.queries_log.clear()  # a full log (9,000 entries) would make every capture look empty
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.content[:300]!r}")
    queries = len(captured)  # now: each later request starts by emptying the connection's query log
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url, **headers)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), queries


def measure(page: int = PAGE, depth: int = DEPTH, repeat: int = REPEAT) -> dict:
    from django.db import connection
    from django.test import Client

    headers = {"HTTP_AUTHORIZATION": f"Token {_reader()}"}
    client = Client()
    first_url = f"/api/v1/audit-events/?limit={page}"
    url = first_url
    for _ in range(depth - 1):  # the 1,000th page is reached as a client reaches it: by its links
        url = client.get(url, **headers).json()["next"]
    deep_url = url
    first_ms, first_queries = _timed(client, first_url, headers, repeat)
    deep_ms, deep_queries = _timed(client, deep_url, headers, repeat)
    deep_first = client.get(deep_url, **headers).json()["results"][0]["sequence"]
    times = []
    with connection.cursor() as cursor:
        for _ in range(repeat):
            started = time.perf_counter()
            cursor.execute("SELECT * FROM audit_auditevent WHERE sequence < %s ORDER BY sequence DESC LIMIT %s",
                           [deep_first + 1, page + 1])
            cursor.fetchall()
            times.append((time.perf_counter() - started) * 1000)
    return {"page": page, "depth": depth, "first_ms": first_ms, "first_queries": first_queries, "deep_ms": deep_ms, "deep_queries": deep_queries,
            "deep_first_sequence": deep_first, "floor_ms": statistics.median(times)}


def main() -> None:
    import django

    django.setup()
    target = int(os.environ.get("BENCH_AUDIT_EVENTS", "10000000"))
    events, fill_seconds = fill(target)
    print(json.dumps({"events": events, "fill_seconds": fill_seconds, **measure()}))


if __name__ == "__main__":
    main()
