"""Concurrent writers never fork the chain nor leave gaps: appends queue on the ChainHead row lock
(audit/chain.py). Needs real concurrent transactions, so PostgreSQL and committed data."""
import threading
from collections import Counter

import pytest
from django.db import connections, transaction

import audit
from audit.chain import GENESIS, verify
from audit.models import AuditEvent, ChainHead
from tests.audit.rawsql import AUDIT_ONLY

THREADS = 8
EVENTS_PER_THREAD = 25
BATCH = 5  # odd-numbered writers append several events in one transaction


def run_writers(writer, count: int) -> list[BaseException]:
    """Start ``count`` threads at once; each has its own database connection, closed at the end."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int):
        try:
            start.wait(timeout=30)
            writer(index)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,), name=f"writer-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "writers still running after 120 s: a deadlock?"
    return errors


def append_events(index: int) -> None:
    if index % 2 == 0:
        for n in range(EVENTS_PER_THREAD):
            with transaction.atomic():
                audit.record("test.concurrent", data={"writer": index, "n": n})
    else:
        for first in range(0, EVENTS_PER_THREAD, BATCH):
            with transaction.atomic():
                for n in range(first, first + BATCH):
                    audit.record("test.concurrent", data={"writer": index, "n": n})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, available_apps=AUDIT_ONLY)
@pytest.mark.parametrize("head_exists", [True, False], ids=["head-row-present", "head-row-created-by-the-race"])
def test_concurrent_appends_make_one_unbroken_chain(head_exists):
    if head_exists:
        audit.record("test.before")
    else:
        assert not ChainHead.objects.exists()
    before = AuditEvent.objects.count()

    errors = run_writers(append_events, THREADS)

    assert errors == []
    total = before + THREADS * EVENTS_PER_THREAD
    events = list(AuditEvent.objects.order_by("sequence").values("sequence", "prev_hash", "hash", "data"))
    assert [e["sequence"] for e in events] == list(range(1, total + 1))
    prev_hashes = Counter(e["prev_hash"] for e in events)
    assert prev_hashes.most_common(1)[0][1] == 1, "two events share a predecessor: the chain forked"
    assert events[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(events, events[1:], strict=False))
    for writer in range(THREADS):
        mine = [e["data"]["n"] for e in events if e["data"].get("writer") == writer]
        assert mine == list(range(EVENTS_PER_THREAD)), f"writer {writer}'s events are missing or out of order"
    head = ChainHead.objects.get(pk=1)
    assert (head.sequence, head.hash) == (total, events[-1]["hash"])
    assert verify() == (total, None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, available_apps=AUDIT_ONLY)
def test_a_writer_that_rolls_back_releases_its_place_without_a_gap():
    """Half the writers fail after recording; their events and head moves vanish with them."""

    def append_or_fail(index: int) -> None:
        for n in range(10):
            try:
                with transaction.atomic():
                    audit.record("test.maybe", data={"writer": index, "n": n})
                    if index % 2:
                        raise RuntimeError("the change failed")
            except RuntimeError:
                pass

    errors = run_writers(append_or_fail, THREADS)

    assert errors == []
    kept = THREADS // 2 * 10
    assert list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True)) == list(range(1, kept + 1))
    assert {e.data["writer"] % 2 for e in AuditEvent.objects.all()} == {0}
    assert verify() == (kept, None)
