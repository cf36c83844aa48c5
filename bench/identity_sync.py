"""``make bench``'s SCIM full sync (issue 21): an identity provider's first sync into an empty
database through Countersign's SCIM 2.0 API, beside the floor measured in the same run: a bulk
insert of the same rows.

The sync is what Okta's and Entra's first provisioning cycle sends (tests/identity): ``POST /Users``
for each user (Okta's payload), then for each group ``POST /Groups`` with no members and one
``PATCH`` adding its members. User ``i`` is a member of group ``i mod groups``. Every request is a
full request through Django's middleware and the SCIM views (bearer token, the services, the audit
record), in process. The floor is ``bulk_create`` of the same user rows (same usernames and e-mails),
the same group rows and the same membership rows, in one transaction each, rolled back. The two
alternate chunk by chunk (the floor's chunk just before the sync's, the same rows), so drift on a
shared machine hits both alike.

The target is a time per user, everything included: ``TARGET_MS_PER_USER``, a first sync of 10,000
users and their groups in ten minutes (docs/performance.md gives the reason). The statements of
``POST /Users`` are counted for the first and the last ``COUNTED`` users, and those of the first and
the last group of as many members: the counts must not grow with the users and groups already there.

Run by bench/run.py in a throwaway test database (PostgreSQL when DATABASE_URL names one, else
SQLite); prints one JSON line. ``BENCH_SCIM_USERS`` (default 10000), ``BENCH_SCIM_GROUPS``
(default 500).
"""
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

TARGET_MS_PER_USER = 60.0  # 10,000 users and their groups in 10 minutes
CHUNKS = 10
COUNTED = 10
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def username(n: int) -> str:
    return f"sync{n:06d}@example.org"


def group_name(g: int) -> str:
    return f"bench-group-{g:04d}"


def user_payload(n: int) -> dict:
    """Okta's POST /Users body (tests/identity/test_scim_okta.py)."""
    return {"schemas": [USER_SCHEMA], "userName": username(n), "externalId": f"00u{n:017d}",
            "name": {"givenName": "User", "familyName": f"N{n}"}, "displayName": f"User N{n}",
            "emails": [{"primary": True, "value": username(n), "type": "work"}], "active": True}


def _chunks(total: int, parts: int) -> list[range]:
    size = max(1, -(-total // parts))
    return [range(start, min(start + size, total)) for start in range(0, total, size)]


class Provider:
    """The identity provider's side: a bearer token from ``create_scim_token``'s service, JSON in and out."""

    def __init__(self):
        from django.test import Client

        from identity.services.credentials import provisioning_credential_create

        _, key = provisioning_credential_create(name="bench")
        self.client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {key}")
        self.errors: list[str] = []

    def call(self, method: str, path: str, body: dict, expect: int) -> dict:
        response = getattr(self.client, method)(f"/scim/v2{path}", data=json.dumps(body),
                                                content_type="application/scim+json")
        if response.status_code != expect:
            self.errors.append(f"{method.upper()} {path}: {response.status_code} {response.content[:200]!r}")
            return {}
        return json.loads(response.content)

    def create_user(self, n: int) -> str:
        return self.call("post", "/Users", user_payload(n), 201).get("id", "")

    def create_group(self, g: int, member_ids: list[str]) -> None:
        gid = self.call("post", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": group_name(g), "members": []},
                        201).get("id")
        if gid and member_ids:
            self.call("patch", f"/Groups/{gid}", {"schemas": [PATCH_SCHEMA], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": uid} for uid in member_ids]}]}, 200)


def _statements(call, *args) -> tuple[object, int]:
    """``call(*args)`` and the SQL statements it ran."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        value = call(*args)
    return value, len(queries.captured_queries)


def _rolled_back(insert) -> float:
    """Seconds ``insert()`` takes in a transaction that is then rolled back."""
    from django.db import transaction

    started = time.perf_counter()
    with transaction.atomic():
        insert()
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


def floor_users(numbers: range) -> float:
    from django.contrib.auth import get_user_model

    users = get_user_model()
    return _rolled_back(lambda: users.objects.bulk_create(
        [users(username=username(n), email=username(n), first_name="User", last_name=f"N{n}", password="!")  # nosec B106: an unusable password, as SCIM users have
         for n in numbers], batch_size=1000))


def floor_groups(numbers: range, members: dict[int, list[str]]) -> float:
    from identity.models import ScimGroup

    def insert():
        groups = ScimGroup.objects.bulk_create([ScimGroup(display_name=group_name(g)) for g in numbers])
        if groups[0].pk is None:  # backends that do not return keys from a bulk insert
            groups = list(ScimGroup.objects.filter(display_name__in=[group_name(g) for g in numbers]))
        through = ScimGroup.members.through
        through.objects.bulk_create([through(scimgroup_id=group.pk, user_id=int(uid))
                                     for g, group in zip(numbers, groups, strict=True) for uid in members[g]], batch_size=1000)

    return _rolled_back(insert)


def sync(users: int, groups: int) -> dict:
    """The first sync and its floor, chunk by chunk; the statements of the first and last users' POSTs."""
    provider = Provider()
    ids: list[str] = []
    counts: dict[int, int] = {}
    seconds = {"users": 0.0, "groups": 0.0, "floor_users": 0.0, "floor_groups": 0.0}
    per_chunk = []  # ms a user, chunk by chunk: flat if a POST's cost does not grow with the users present
    counted = set(range(min(COUNTED, users))) | set(range(max(users - COUNTED, 0), users))
    for chunk in _chunks(users, CHUNKS):
        seconds["floor_users"] += floor_users(chunk)
        started = time.perf_counter()
        for n in chunk:
            if n in counted:
                uid, counts[n] = _statements(provider.create_user, n)
            else:
                uid = provider.create_user(n)
            ids.append(uid)
        elapsed = time.perf_counter() - started
        seconds["users"] += elapsed
        per_chunk.append(elapsed / len(chunk) * 1000)
    members = {g: [uid for uid in ids[g::groups] if uid] for g in range(groups)}
    # The first group and the last of as many members: (its index, members, statements of its POST and PATCH).
    last_like_first = max(g for g in range(groups) if len(members[g]) == len(members[0]))
    group_statements = {}
    for chunk in _chunks(groups, CHUNKS):
        seconds["floor_groups"] += floor_groups(chunk, members)
        started = time.perf_counter()
        for g in chunk:
            if g in (0, last_like_first):
                group_statements[g] = (g, len(members[g]), _statements(provider.create_group, g, members[g])[1])
            else:
                provider.create_group(g, members[g])
        seconds["groups"] += time.perf_counter() - started
    first, last = sorted(counted)[:COUNTED], sorted(counted)[-COUNTED:]
    return {"seconds": seconds, "errors": provider.errors, "user_ms_by_chunk": per_chunk,
            "statements_first": [counts[n] for n in first], "statements_last": [counts[n] for n in last],
            "last_present": last[0], "group_statements": [group_statements[0], group_statements[last_like_first]]}


def run() -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from identity.models import ScimGroup

    users = int(os.environ.get("BENCH_SCIM_USERS", "10000"))
    groups = int(os.environ.get("BENCH_SCIM_GROUPS", "500"))
    result = {"vendor": connection.vendor, "users": users, "groups": groups,
              "target_ms_per_user": TARGET_MS_PER_USER, **sync(users, groups)}
    synced = get_user_model().objects.filter(username__startswith="sync", person__provisioned=True).count()
    result["synced_users"] = synced
    result["synced_groups"] = ScimGroup.objects.filter(display_name__startswith="bench-group-").count()
    result["memberships"] = ScimGroup.members.through.objects.count()
    return result


def lines(r: dict) -> list[tuple[str, bool]]:
    s = r["seconds"]
    total, floor = s["users"] + s["groups"], s["floor_users"] + s["floor_groups"]
    ms_per_user = total / r["users"] * 1000
    complete = (not r["errors"] and r["synced_users"] == r["users"] and r["synced_groups"] == r["groups"]
                and r["memberships"] == r["users"])
    ok = complete and ms_per_user <= r["target_ms_per_user"]
    budget = r["target_ms_per_user"] * r["users"] / 1000
    sync_line = (
        f"SCIM first sync ({r['vendor']}, in process): {r['users']:,} users + {r['groups']:,} groups in "
        f"{total:.1f} s = {r['users'] / total:.1f} users/s (POST /Users {s['users']:.1f} s, POST + PATCH /Groups "
        f"{s['groups']:.1f} s), {len(r['errors'])} errors, {r['synced_users']:,} users / {r['synced_groups']:,} "
        f"groups / {r['memberships']:,} memberships stored | floor (bulk_create of the same users, groups and "
        f"memberships): {floor:.2f} s = {r['users'] / floor:,.0f} users/s | ratio {total / floor:.0f} | target "
        f"<= {r['target_ms_per_user']:.0f} ms a user ({budget:.0f} s for {r['users']:,}), "
        f"every request answered: {ms_per_user:.1f} ms | {'OK' if ok else 'MISSED'}")
    first, last = r["statements_first"], r["statements_last"]
    flat = bool(first) and max(last) <= max(first)
    chunk_ms = r["user_ms_by_chunk"]
    count_line = (
        f"statements per SCIM POST /Users: first {len(first)} users {first}; with {r['last_present']:,} users "
        f"present {last} (time a POST, first to last tenth of the users: {chunk_ms[0]:.1f} -> {chunk_ms[-1]:.1f} "
        f"ms) | floor — | target no more at the end than at the start | {'OK' if flat else 'MISSED'}")
    (_, members, first_count), (last, _, last_count) = r["group_statements"]
    group_flat = last_count <= first_count
    group_line = (
        f"statements per SCIM group push of {members} members (POST /Groups, PATCH add): first group {first_count};"
        f" with {last:,} groups present {last_count} | floor — | target no more at the end than at the start | "
        f"{'OK' if group_flat else 'MISSED'}")
    return [(sync_line, ok), (count_line, flat), (group_line, group_flat)]


if __name__ == "__main__":
    from bench.throwaway import measure_in_throwaway_database

    measure_in_throwaway_database(run)
