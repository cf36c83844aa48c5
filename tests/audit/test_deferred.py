"""audit.deferred: events recorded in the block are chained at its end, under one short lock."""
import pytest
from django.db import IntegrityError, transaction
from django.test.utils import CaptureQueriesContext
from django.db import connection

import audit
from audit.chain import verify
from audit.models import AuditEvent, ChainHead

pytestmark = pytest.mark.django_db


def head_sequence() -> int:
    head = ChainHead.objects.filter(pk=1).first()
    return head.sequence if head else 0


def test_events_wait_for_the_end_of_the_block_and_are_chained_in_order():
    audit.record("test.before")
    with audit.deferred():
        first = audit.record("test.first", data={"n": 1})
        second = audit.record("test.second", data={"n": 2})
        # Nothing written, the head not touched (so not locked) until the block ends.
        assert first.pk is None and first.sequence is None
        assert head_sequence() == 1
        assert AuditEvent.objects.count() == 1

    assert [first.sequence, second.sequence] == [2, 3]
    assert second.prev_hash == first.hash
    assert list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True)) == [
        "test.before", "test.first", "test.second",
    ]
    assert head_sequence() == 3
    assert verify() == (3, None)


def test_the_append_is_one_lock_one_insert_of_events_one_of_merkle_nodes_and_one_update():
    audit.record("test.head_exists")
    with CaptureQueriesContext(connection) as queries:
        with audit.deferred():
            for n in range(5):
                audit.record("test.many", data={"n": n})
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].upper().startswith("INSERT")]
    assert len(inserts) == 2
    assert "audit_auditevent" in inserts[0] and "audit_merklenode" in inserts[1]
    assert statements.count("UPDATE") == 1
    assert verify() == (6, None)


def test_a_block_that_raises_writes_none_of_its_events():
    audit.record("test.kept")
    with pytest.raises(RuntimeError):
        with audit.deferred():
            audit.record("test.lost")
            raise RuntimeError("the service refused")

    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["test.kept"]
    # The next block starts clean: the lost event is not carried over.
    with audit.deferred():
        audit.record("test.next")
    assert list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True)) == ["test.kept", "test.next"]
    assert verify() == (2, None)


def test_an_event_in_a_nested_atomic_block_is_appended_at_once_and_rolls_back_with_it():
    with audit.deferred():
        audit.record("test.outer")
        try:
            with transaction.atomic():
                audit.record("test.inner_rolled_back")
                assert AuditEvent.objects.filter(action="test.inner_rolled_back").exists()
                raise IntegrityError("inner failure")
        except IntegrityError:
            pass
        with transaction.atomic():
            audit.record("test.inner_kept")

    actions = list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))
    assert actions == ["test.inner_kept", "test.outer"]
    assert verify() == (2, None)


def test_an_inner_block_is_a_savepoint_of_its_own_and_appends_at_once():
    """A deferred service called inside another keeps its own savepoint: its events cannot wait
    for the outer block, which might survive its rollback."""
    with audit.deferred():
        audit.record("test.a")
        with audit.deferred():
            audit.record("test.b")
        assert list(AuditEvent.objects.values_list("action", flat=True)) == ["test.b"]
    assert list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True)) == ["test.b", "test.a"]
    assert verify() == (2, None)


def test_used_as_a_decorator_each_call_is_its_own_block():
    @audit.deferred()
    def service(n):
        audit.record("test.call", data={"n": n})
        return head_sequence()

    assert service(1) == 0  # inside the call the event still waits
    assert service(2) == 1
    assert head_sequence() == 2
    assert verify() == (2, None)
