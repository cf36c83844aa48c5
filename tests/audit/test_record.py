"""audit.record appends one event to the hash chain in the caller's transaction (RULES.md L1, L2)."""
import json
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

import audit
from audit.chain import GENESIS, canonical, compute_hash
from audit.models import AuditEvent, ChainHead
from governance.models import Team
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_first_event_starts_the_chain_from_genesis():
    event = audit.record("test.first")

    assert event.sequence == 1
    assert event.prev_hash == GENESIS == "0" * 64
    assert event.hash == compute_hash(event, GENESIS)
    assert len(event.hash) == 64


def test_events_are_numbered_one_to_n_and_each_links_to_the_previous_hash():
    events = [audit.record("test.step", data={"n": n}) for n in range(1, 8)]

    stored = list(AuditEvent.objects.order_by("sequence"))
    assert [e.sequence for e in stored] == list(range(1, 8))
    assert stored[0].prev_hash == GENESIS
    for previous, current in zip(stored, stored[1:], strict=False):
        assert current.prev_hash == previous.hash
    assert [e.hash for e in stored] == [e.hash for e in events]
    assert len({e.hash for e in stored}) == 7


def test_the_chain_head_follows_the_last_event():
    audit.record("test.one")
    last = audit.record("test.two")

    head = ChainHead.objects.get(pk=1)
    assert (head.sequence, head.hash) == (2, last.hash)


def test_the_stored_hash_is_recomputable_from_the_row_read_back():
    """What verify reads from the database must hash to what record computed in memory."""
    actor = UserFactory(username="hamlet")
    team = Team.objects.create(slug="elsinore", name="Elsinore")
    at = datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=dt_timezone.utc)
    audit.record(
        "team.inspected",
        actor=actor,
        target=team,
        environment="production",
        team="elsinore",
        data={"when": at, "amount": Decimal("12.50"), "names": ["Ophelia", "Horatio"], "nested": {"ok": True}},
        at=at,
    )

    event = AuditEvent.objects.get(action="team.inspected")
    assert compute_hash(event, event.prev_hash) == event.hash
    assert event.created_at == at


def test_record_snapshots_actor_and_target():
    actor = UserFactory(username="ophelia")
    team = Team.objects.create(slug="court", name="The Court")

    event = audit.record("team.viewed", actor=actor, target=team, team="court", environment="staging")

    assert event.actor == actor
    assert event.actor_username == "ophelia"
    assert event.target_type == "governance.team"
    assert event.target_id == str(team.pk)
    assert event.target_repr == str(team)
    assert (event.team, event.environment) == ("court", "staging")


def test_the_system_is_an_empty_actor():
    event = audit.record("task.ran")

    assert event.actor is None
    assert event.actor_username == ""
    assert str(event) == "#1 task.ran by system"


def test_an_unsaved_actor_keeps_only_the_username_snapshot():
    ghost = UserFactory.build(username="ghost")

    event = audit.record("test.ghost", actor=ghost)

    assert event.actor_id is None
    assert event.actor_username == "ghost"


def test_data_is_stored_as_plain_json():
    at = timezone.now()
    event = audit.record("test.data", data={"at": at, "amount": Decimal("1.10"), "delta": timedelta(minutes=5)})

    stored = AuditEvent.objects.get(pk=event.pk).data
    assert stored == event.data
    assert isinstance(stored["at"], str) and isinstance(stored["amount"], str)
    assert json.loads(json.dumps(stored)) == stored


def test_no_data_is_an_empty_object():
    assert audit.record("test.empty").data == {}


def test_explicit_time_is_recorded_and_hashed_in_utc():
    at = datetime(2025, 6, 1, 12, 0, tzinfo=dt_timezone(timedelta(hours=2)))
    event = audit.record("test.timed", at=at)

    assert event.created_at == at
    assert '"created_at":"2025-06-01T10:00:00.000000+00:00"' in canonical(event)


def test_a_rolled_back_event_leaves_no_gap():
    """The event and the head move in the caller's transaction: a rollback takes both back."""
    audit.record("test.kept")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            audit.record("test.discarded")
            raise RuntimeError("the change this event described failed")
    after = audit.record("test.next")

    assert after.sequence == 2
    assert list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True)) == ["test.kept", "test.next"]
    assert ChainHead.objects.get(pk=1).sequence == 2


def test_record_creates_the_chain_head_when_it_is_missing():
    ChainHead.objects.all().delete()

    event = audit.record("test.fresh")

    assert event.sequence == 1 and event.prev_hash == GENESIS
    assert ChainHead.objects.get(pk=1).hash == event.hash
