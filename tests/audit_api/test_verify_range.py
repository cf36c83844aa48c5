"""``audit-events/verify/?from=&to=``: a range against the chain and the seals (docs/audit-events.md).
Tampering goes around every guard as in tests/audit (triggers dropped inside a rolled-back savepoint)."""
import pytest

import audit
from audit.seals import seal
from tests.audit.rawsql import drop_triggers, rolled_back, set_event_data, sql
from tests.audit.sealtools import drop_seal_triggers, rewrite_event, signing_key  # noqa: F401 (fixture)

VERIFY = "/api/v1/audit-events/verify/"


@pytest.fixture
def trail(demo, signing_key):  # noqa: F811
    """The demo's events, a few more, a seal, a few more, a second seal, and two unsealed events."""
    for n in range(3):
        audit.record("test.step", data={"n": n})
    first = seal()
    for n in range(3, 6):
        audit.record("test.step", data={"n": n})
    second = seal()
    audit.record("test.step", data={"n": 6})
    audit.record("test.step", data={"n": 7})
    return first, second


def check(client, first, last):
    response = client.get(f"{VERIFY}?from={first}&to={last}")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_sealed_range_verifies_against_its_seal_and_the_latest(demo, api_as, trail):
    first, second = trail
    client = api_as(demo.auditor)
    body = check(client, 2, first.sequence - 1)

    assert (body["ok"], body["sealed"], body["break"], body["seal_break"]) == (True, True, None, None)
    assert body["seal"]["number"] == first.number and body["seal"]["signature_valid"] is True
    assert body["seal"]["matches_chain"] is True
    assert body["seals_checked"] == 2 and body["latest_seal"]["number"] == second.number
    assert body["checked"] == first.sequence - 1
    from audit.models import AuditEvent

    assert body["last_hash"] == AuditEvent.objects.get(sequence=first.sequence - 1).hash
    assert body["public_key_fingerprint"] == first.key_fingerprint


def test_events_after_the_latest_seal_are_chained_but_not_sealed(demo, api_as, trail):
    _, second = trail
    body = check(api_as(demo.sec), second.sequence + 1, second.sequence + 3)

    assert (body["ok"], body["sealed"], body["seal"]) == (True, False, None)
    assert body["latest_seal"]["number"] == second.number


def test_a_changed_event_is_named(demo, api_as, trail):
    first, _ = trail
    client = api_as(demo.auditor)
    with rolled_back():
        drop_triggers()
        set_event_data(3, '{"changed": true}')
        body = check(client, 1, 5)

    assert (body["ok"], body["sealed"]) == (False, False)
    assert body["break"] == {"sequence": 3, "problem": "content does not match its hash"}
    assert check(client, 1, 5)["ok"] is True


def test_a_rewrite_with_every_hash_recomputed_is_caught_by_the_seal(demo, api_as, trail):
    first, _ = trail
    client = api_as(demo.auditor)
    with rolled_back():
        drop_triggers()
        rewrite_event(3, {"rewritten": True})
        body = check(client, 2, 4)

    assert body["break"] is None  # the chain alone is fooled
    assert body["ok"] is False and body["seal"]["matches_chain"] is False
    assert body["seal_break"] == {"seal": first.number, "problem": f"head_hash is not the hash of event #{first.sequence}"}


def test_a_changed_later_seal_breaks_the_seal_chain(demo, api_as, trail):
    first, second = trail
    client = api_as(demo.auditor)
    with rolled_back():
        drop_seal_triggers()
        sql("UPDATE audit_auditseal SET head_hash = %s WHERE number = %s", ["f" * 64, second.number])
        body = check(client, 1, 3)

    assert body["ok"] is False
    assert body["seal_break"] == {"seal": second.number, "problem": "signature does not verify"}


@pytest.mark.parametrize("query", ["", "from=1", "from=0&to=3", "from=5&to=2", "from=a&to=2", "from=1&to=99999999"])
def test_bad_ranges_are_400(demo, api_as, trail, query):
    response = api_as(demo.auditor).get(f"{VERIFY}?{query}")
    assert response.status_code == 400, response.content


def test_too_long_a_walk_is_400(demo, api_as, trail, monkeypatch):
    from compliance import trail as module

    monkeypatch.setattr(module, "MAX_SPAN", 3)
    response = api_as(demo.auditor).get(f"{VERIFY}?from=1&to=2")
    assert response.status_code == 400
    assert "at most 3 events" in response.json()["to"][0]
