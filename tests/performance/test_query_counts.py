"""Queries per request do not grow with data (issue 6): the gate, the reviewer dashboard, inbox and
change list, the change request page, every API list and every admin change list cost the same
number of queries on a small organisation and on one ten times its size. What ``bench.seed`` does
not generate (the control plane, integrations, identity, transparency, the portal's decisions) is
counted at two sizes in the test_query_counts_*.py modules beside this one.

Both organisations come from ``bench.seed`` (the generator ``make bench`` uses), each loaded in
a savepoint that is rolled back after its counts are taken, so one test compares them."""
from django.db import transaction

from bench import queries, seed

# The small organisation shows fewer rows than any page holds (dashboard lists 15-25, API pages 50,
# admin pages 100), the large one fills every page: a query per row shows up as a difference.
TINY = {
    "users": 20, "teams": 2, "environments": 3, "role_assignments": 60, "change_requests": 20,
    "deployments": 10, "approvals": 20, "audit_events": 200, "queue_pending": 3, "queue_approved": 1,
}
TEN_TIMES = {
    "users": 200, "teams": 20, "environments": 6, "role_assignments": 1_500, "change_requests": 200,
    "deployments": 100, "approvals": 200, "audit_events": 2_000, "queue_pending": 30, "queue_approved": 10,
}


class _Rollback(Exception):
    pass


def counts_at(scale: dict) -> tuple[dict, dict]:
    """Seed ``scale``, count every page's queries, roll the seed back."""
    from django.contrib.auth import get_user_model

    result = {}
    try:
        with transaction.atomic():
            written = seed.seed(scale)
            fixtures = seed.bench_fixtures()
            people = get_user_model().objects.in_bulk(fixtures["users"].values())
            by_role = {role: people[fixtures["users"][f"bench-{role}"]] for role in ("rev", "admin")}
            keys = {role: fixtures["tokens"][f"bench-{role}"] for role in ("ops", "auditor", "sec")}
            result = queries.measure(by_role, keys, fixtures["gate_ready"])
            raise _Rollback
    except _Rollback:
        pass
    return result, written


def test_queries_per_request_are_the_same_at_two_sizes(db):
    small, small_rows = counts_at(TINY)
    large, large_rows = counts_at(TEN_TIMES)

    assert large_rows["ChangeRequest"] >= 9 * small_rows["ChangeRequest"], (small_rows, large_rows)
    assert large_rows["Deployment"] >= 9 * small_rows["Deployment"]
    assert large_rows["AuditEvent"] >= 5 * small_rows["AuditEvent"]  # "at least": the small one tops up more
    failed = {name: count for name, count in {**small, **large}.items() if count <= 0}
    assert not failed, f"pages that did not answer 200 (negative: status): {failed}"
    for must in ("gate", "dashboard", "change request page", "inbox", "all changes", "api change-requests/",
                 "api deployments/", "api role-assignments/", "api control-changes/",
                 "api deployment-reconciliation/", "api audit/checkpoints/", "admin releases.changerequest",
                 "admin audit.auditevent"):
        assert must in small, must
    grew = {name: (small[name], large.get(name)) for name in small if large.get(name) != small[name]}
    assert not grew, f"query counts that change with data (small, 10x): {grew}"
