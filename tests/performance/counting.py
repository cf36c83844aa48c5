"""The measure of tests/performance/test_query_counts_*.py: a request's queries at a small and at a
larger size of what it shows, which must be the same count (issue 21). ``bench.queries`` counts
the same way for ``make bench``."""
from django.db import connection
from django.test.utils import CaptureQueriesContext

SMALL, LARGE = 2, 12


def queries(request) -> int:
    """Queries of the second call of ``request`` (a function making one request; the first warms
    caches and a key's last_used_at); negative: the HTTP status when the answer is an error (a
    redirect is a post that went through)."""
    request()
    with CaptureQueriesContext(connection) as captured:
        response = request()
    return len(captured) if response.status_code < 400 else -response.status_code


def assert_same_at_two_sizes(grow, requests) -> dict:
    """``grow(n)`` adds ``n`` rows of what the pages show (with their related rows); ``requests()``
    names the requests to count, each a function making one. Counted at SMALL rows, then at LARGE."""
    grow(SMALL)
    calls = requests()
    small = {name: queries(call) for name, call in calls.items()}
    grow(LARGE - SMALL)
    large = {name: queries(call) for name, call in calls.items()}
    failed = {name: count for name, count in {**small, **large}.items() if count < 0}
    assert not failed, f"requests that did not succeed (negative: status): {failed}"
    grew = {name: (small[name], large[name]) for name in small if large[name] != small[name]}
    assert not grew, f"query counts that change with data ({SMALL} rows, {LARGE} rows): {grew}"
    return small
