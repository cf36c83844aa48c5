"""bench/audit_pages.py (``make bench``'s audit trail line): it fills a trail and compares the first
and a deep keyset page; its line says OK only for the same queries and a deep page no slower than
1.5 x the first."""
import pytest

from bench import audit_pages
from bench.run import audit_pages_line

RESULT = {"events": 10_000_000, "page": 100, "depth": 1000, "first_ms": 10.0, "first_queries": 3, "deep_ms": 11.0,
          "deep_queries": 3, "deep_first_sequence": 9_900_100, "floor_ms": 0.5}


def test_the_line_is_ok_for_the_same_queries_and_time():
    line, ok = audit_pages_line(RESULT)
    assert ok and line.startswith("audit-events/ at 10,000,000 events") and line.endswith("| OK")


@pytest.mark.parametrize("change", [{"deep_queries": 4}, {"deep_ms": 16.0}])
def test_the_line_misses_for_more_queries_or_a_slow_deep_page(change):
    line, ok = audit_pages_line({**RESULT, **change})
    assert not ok and line.endswith("| MISSED")


@pytest.mark.postgres
def test_fill_and_measure_on_postgresql(db):
    events, _ = audit_pages.fill(2_500)
    result = audit_pages.measure(page=2, depth=1000, repeat=2)

    assert events == 2_500
    assert result["first_queries"] == result["deep_queries"] > 0
    assert result["deep_first_sequence"] <= events - 2 * 999 + 5
