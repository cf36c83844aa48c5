"""bench/identity_sync.py (``make bench``'s SCIM full sync): the lines say OK only for a complete
sync within the time a user, and only when a POST /Users costs no more statements with many users
present than with few; a tiny sync runs for real."""
import pytest
from django.contrib.auth import get_user_model

from bench import identity_sync
from identity.models import Person, ScimGroup

RESULT = {
    "vendor": "postgresql", "users": 10_000, "groups": 500, "target_ms_per_user": 60.0,
    "seconds": {"users": 200.0, "groups": 100.0, "floor_users": 1.0, "floor_groups": 0.5},
    "errors": [], "user_ms_by_chunk": [20.0, 21.0], "statements_first": [16, 15, 15], "statements_last": [15, 15, 15],
    "last_present": 9_990, "group_statements": [[0, 20, 198], [499, 20, 198]], "synced_users": 10_000, "synced_groups": 500, "memberships": 10_000,
}


def test_the_lines_are_ok_for_a_complete_sync_in_time_and_a_flat_statement_count():
    (sync, ok), (count, flat), (group, group_flat) = identity_sync.lines(RESULT)
    assert ok and flat and group_flat
    assert "10,000 users + 500 groups in 300.0 s = 33.3 users/s" in sync and "ratio 200" in sync
    assert "with 9,990 users present [15, 15, 15]" in count
    assert "push of 20 members (POST /Groups, PATCH add): first group 198; with 499 groups present 198" in group


@pytest.mark.parametrize("change", [
    {"seconds": {**RESULT["seconds"], "users": 550.0}},  # 65 ms a user
    {"errors": ["POST /Users: 500"]},
    {"synced_users": 9_999},
    {"memberships": 9_000},
])
def test_a_slow_or_incomplete_sync_misses(change):
    (line, ok), *_ = identity_sync.lines({**RESULT, **change})
    assert not ok and line.endswith("MISSED")


def test_statements_that_grow_with_the_users_present_miss():
    _, (line, flat), _ = identity_sync.lines({**RESULT, "statements_last": [15, 17, 15]})
    assert not flat and line.endswith("MISSED")


def test_group_statements_that_grow_with_the_groups_present_miss():
    *_, (line, flat) = identity_sync.lines({**RESULT, "group_statements": [[0, 20, 198], [499, 20, 199]]})
    assert not flat and line.endswith("MISSED")


@pytest.mark.django_db
def test_a_tiny_sync_through_the_scim_api(monkeypatch):
    monkeypatch.setenv("BENCH_SCIM_USERS", "23")
    monkeypatch.setenv("BENCH_SCIM_GROUPS", "3")
    result = identity_sync.run()
    assert result["errors"] == []
    assert (result["synced_users"], result["synced_groups"], result["memberships"]) == (23, 3, 23)
    assert Person.objects.filter(provisioned=True, user__username=identity_sync.username(22)).exists()
    members = ScimGroup.objects.get(display_name=identity_sync.group_name(1)).members
    assert sorted(members.values_list("username", flat=True)) == [identity_sync.username(n) for n in (1, 4, 7, 10, 13,
                                                                                                       16, 19, 22)]
    assert len(result["statements_first"]) == len(result["statements_last"]) == identity_sync.COUNTED
    assert max(result["statements_last"]) <= max(result["statements_first"])
    (first, first_members, first_count), (last, last_members, last_count) = result["group_statements"]
    assert (first, last, first_members, last_members) == (0, 1, 8, 8) and first_count >= last_count > 8
    assert len(result["user_ms_by_chunk"]) == identity_sync.CHUNKS - 2  # chunks of 3: 23 users in 8
    assert all(ok for _, ok in identity_sync.lines({**result, "target_ms_per_user": float("inf")}))


@pytest.mark.django_db
def test_the_floor_inserts_the_same_rows_and_leaves_nothing():
    assert identity_sync.floor_users(range(5)) > 0
    assert identity_sync.floor_groups(range(2), {0: [], 1: []}) > 0
    assert not ScimGroup.objects.exists() and not get_user_model().objects.filter(username__startswith="sync").exists()
