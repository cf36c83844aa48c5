"""bench/append_concurrency.py (``make bench``'s appends under concurrency): appends a second with
1 … 64 writers beside as many writers inserting into a plain table; the lines say MISSED when more
writers lose throughput, when the chain does not verify, or when a writer count could not run."""
import pytest
from django.db import connection

from audit.models import AuditEvent
from bench import append_concurrency

POINT = {"writers": 1, "appends": 600, "appends_per_second": 120.0, "inserts": 900, "inserts_per_second": 180.0}
RESULT = {"vendor": "postgresql", "seconds": 5.0, "max_connections": 100, "min_ratio": 0.8, "verified": True,
          "chain_problem": "", "events": 5000,
          "points": [POINT, {**POINT, "writers": 4, "appends_per_second": 150.0, "inserts_per_second": 800.0}]}


def test_the_lines_are_ok_when_more_writers_keep_the_throughput_and_the_chain_verifies():
    lines = append_concurrency.lines(RESULT)
    assert [ok for _, ok in lines] == [True, True]
    assert lines[0][0].startswith("[1 writer] audit appends") and lines[1][0].startswith("[4 writers] ")
    assert "150 appends/s = 1.25 x 1 writer, chain verifies" in lines[1][0]
    assert "800 tx/s = 4.44 x 1 | ratio 0.19" in lines[1][0]


@pytest.mark.parametrize("change, oks", [
    ({"points": [POINT, {**POINT, "writers": 4, "appends_per_second": 90.0}]}, [True, False]),  # 0.75 x 1 writer
    ({"verified": False}, [False, False]),
    ({"points": [POINT, {"writers": 64, "not_run": "needs 64 connections, the server has 40 free"}]}, [True, False]),
])
def test_a_writer_count_misses(change, oks):
    assert [ok for _, ok in append_concurrency.lines({**RESULT, **change})] == oks


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_and_two_writers_append_for_a_second_and_the_chain_verifies(monkeypatch):
    monkeypatch.setenv("BENCH_CONCURRENCY_WRITERS", "1,2")
    monkeypatch.setenv("BENCH_CONCURRENCY_SECONDS", "1")
    before = AuditEvent.objects.count()
    measured = append_concurrency.run()
    assert [p["writers"] for p in measured["points"]] == [1, 2]
    assert all(p["appends"] > 0 and p["inserts"] > 0 for p in measured["points"])
    assert measured["verified"] and measured["events"] == before + 1 + sum(p["appends"] for p in measured["points"])
    assert append_concurrency.FLOOR_TABLE not in connection.introspection.table_names()
    assert [ok for _, ok in append_concurrency.lines(measured)][0]
