"""The audit trail over the API (API.md ``audit-events/``, docs/audit-events.md): readers per V3,
filters, keyset pages whose cost does not grow with depth, and events a consumer can re-hash."""
import hashlib
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import audit
from audit.chain import deferred
from audit.models import AuditEvent

EVENTS = "/api/v1/audit-events/"


def rehash(event: dict) -> str:
    """Independent of audit.chain: the procedure docs/audit-events.md gives."""
    fields = {k: v for k, v in event.items() if k not in ("hash", "prev_hash")}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + event["prev_hash"]
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def walk(client, url):
    """Every event over every page, following ``next``."""
    events = []
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.content
        body = page.json()
        events.extend(body["results"])
        url = body["next"]
    return events


@pytest.mark.parametrize("persona", ["sec", "auditor", "admin"])
def test_audit_viewers_read_the_trail_newest_first(demo, api_as, persona):
    audit.record("test.step", actor=demo.dev, environment="staging", team="payments", data={"n": "ü"})

    body = api_as(getattr(demo, persona)).get(EVENTS).json()

    newest = AuditEvent.objects.order_by("-sequence").first()
    assert body["results"][0]["sequence"] == newest.sequence
    assert [e["sequence"] for e in body["results"]] == sorted((e["sequence"] for e in body["results"]), reverse=True)
    assert set(body) == {"next", "previous", "results"}


@pytest.mark.parametrize("persona", ["dev", "rev", "ops", "mgr", "idev"])
def test_others_are_told_the_trail_needs_view_audit(demo, api_as, persona):
    response = api_as(getattr(demo, persona)).get(EVENTS)
    verify = api_as(getattr(demo, persona)).get(f"{EVENTS}verify/?from=1&to=1")

    for refused in (response, verify):
        assert refused.status_code == 403
        assert [r["code"] for r in refused.json()["reasons"]] == ["missing_duty"]


def test_anonymous_gets_401(db, client):
    assert client.get(EVENTS).status_code == 401


def test_each_event_carries_its_chain_fields_and_rehashes(demo, api_as):
    audit.record("test.step", actor=demo.dev, environment="staging", team="payments",
                 data={"text": "naïve — ✓", "when": timezone.now(), "nested": {"b": 1, "a": [1, 2.5, None]}})

    events = walk(api_as(demo.auditor), f"{EVENTS}?order=asc&limit=7")

    assert [e["sequence"] for e in events] == list(range(1, AuditEvent.objects.count() + 1))
    assert events[0]["prev_hash"] == "0" * 64
    for before, event in zip(events, events[1:], strict=False):
        assert event["prev_hash"] == before["hash"]
    for event in events:
        assert rehash(event) == event["hash"], event["sequence"]
    last = next(e for e in events if e["action"] == "test.step")
    assert set(last) == {"sequence", "created_at", "actor_id", "actor_username", "action", "target_type", "target_id",
                         "target_repr", "environment", "team", "ip", "user_agent", "request_id", "data", "prev_hash",
                         "hash"}
    assert (last["actor_username"], last["actor_id"], last["environment"]) == ("dev", demo.dev.pk, "staging")


def test_filters(demo, api_as):
    now = timezone.now()
    old = audit.record("test.old", actor=demo.dev, environment="staging", team="payments", at=now - timedelta(days=3))
    new = audit.record("test.new", actor=demo.rev, environment="production", team="identity", at=now)
    client = api_as(demo.sec)

    def sequences(query):
        response = client.get(f"{EVENTS}?{query}")
        assert response.status_code == 200, response.content
        return [e["sequence"] for e in response.json()["results"]]

    assert sequences("action=test.old") == [old.sequence]
    assert sequences("actor=rev&action=test.new") == [new.sequence]
    assert sequences("environment=production&team=identity&action=test.new") == [new.sequence]
    assert sequences("environment=staging&action=test.new") == []
    assert old.sequence not in sequences(f"since={(now - timedelta(days=1)).isoformat().replace('+00:00', 'Z')}")
    assert sequences(f"action=test.old&until={(now - timedelta(days=1)).isoformat().replace('+00:00', 'Z')}") == [
        old.sequence]
    assert sequences(f"after={old.sequence}&before={new.sequence + 1}&order=asc") == list(
        range(old.sequence + 1, new.sequence + 1))


@pytest.mark.parametrize("query", [
    "since=yesterday", "after=x", "order=sideways", "limit=abc&after=-1", "since=2026-13-01",
    "since=0001-01-01T00:00:00%2B01:00", "until=9999-12-31T23:59:59-01:00", "after=99999999999999999999999",
    "before=0",
])
def test_bad_filters_are_400(demo, api_as, query):
    response = api_as(demo.sec).get(f"{EVENTS}?{query}")
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("offset", ["%2B17:54", "-23:59", "%2B00:00"])
def test_any_offset_python_accepts_is_answered_in_utc(demo, api_as, offset):
    """PostgreSQL refuses a literal offset beyond ±15:59 (a 500 once, found by the fuzz): the filter
    converts to UTC first, so the same instant filters the same on both databases."""
    event = audit.record("test.offset", at=timezone.now() - timedelta(days=2))
    response = api_as(demo.sec).get(f"{EVENTS}?action=test.offset&since=2000-01-01T00:00:00{offset}")
    assert response.status_code == 200, response.content
    assert [e["sequence"] for e in response.json()["results"]] == [event.sequence]


@pytest.mark.parametrize("cursor", ["cD1hYmM=", "bz0tNSZwPTM=", "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "cD0tMw=="])
def test_a_forged_cursor_is_404_not_500(demo, api_as, cursor):
    response = api_as(demo.sec).get(f"{EVENTS}?cursor={cursor}")
    assert response.status_code == 404, response.content
    assert "detail" in response.json()


def test_the_thousandth_page_costs_what_the_first_does(demo, api_as):
    """Keyset pages: the same queries on page 1 and page 1000, none with an OFFSET or a COUNT."""
    with deferred():
        for n in range(1005):
            audit.record("test.bulk", data={"n": n})
    client = api_as(demo.auditor)
    client.get(f"{EVENTS}?limit=1")  # warm: the token's first use writes last_used_at

    url, pages = f"{EVENTS}?limit=1", {}
    for number in range(1, 1001):
        with CaptureQueriesContext(connection) as captured:
            body = client.get(url).json()
        if number in (1, 2, 500, 1000):
            pages[number] = [q["sql"] for q in captured.captured_queries]
        url = body["next"]

    assert len({len(sql) for sql in pages.values()}) == 1, {n: len(s) for n, s in pages.items()}
    page_query = [q for q in pages[1000] if "audit_auditevent" in q]
    assert len(page_query) == 1
    assert "OFFSET" not in page_query[0].upper() and "COUNT(" not in page_query[0].upper()
    assert '"sequence" <' in page_query[0]
    assert body["results"][0]["sequence"] == AuditEvent.objects.order_by("-sequence")[999].sequence
