"""Recording and verifying the hash chain (RULES.md L2).

hash = sha256(canonical JSON of the event's fields + prev_hash). The genesis prev_hash is 64 zeros.
Appends are serialised by locking the ``ChainHead`` row inside the caller's transaction, so
concurrent writers never fork the chain nor leave gaps in ``sequence``.
"""
import hashlib
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from datetime import datetime, timezone as dt_timezone

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit import context, tree, webhooks
from audit.models import AuditEvent, ChainHead

GENESIS = "0" * 64


def json_safe(data) -> dict:
    """``data`` as it will read back from a JSONField (datetimes as ISO strings, and so on)."""
    return json.loads(json.dumps(data or {}, cls=DjangoJSONEncoder))


def canonical_fields(event: AuditEvent) -> dict:
    """The fields an event's hash covers, as the hash reads them (``created_at`` as ISO 8601 in UTC
    with microseconds). The API serves events as exactly these plus ``prev_hash`` and ``hash``."""
    created_at = event.created_at
    if isinstance(created_at, datetime):
        created_at = created_at.astimezone(dt_timezone.utc).isoformat(timespec="microseconds")
    return {
        "sequence": event.sequence,
        "created_at": created_at,
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_repr": event.target_repr,
        "environment": event.environment,
        "team": event.team,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "data": event.data,
    }


def canonical(event: AuditEvent) -> str:
    return json.dumps(canonical_fields(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(event: AuditEvent, prev_hash: str) -> str:
    return hashlib.sha256((canonical(event) + prev_hash).encode("utf-8")).hexdigest()


@cache
def _lock_head_sql(vendor: str) -> str:
    """The head's row under its lock, as ``select_for_update().get(pk=1)`` reads it, written once
    per vendor from the model's metadata: every append runs it while every other writer waits."""
    q = connection.ops.quote_name
    columns = ", ".join(q(field.column) for field in ChainHead._meta.concrete_fields)
    sql = f"SELECT {columns} FROM {q(ChainHead._meta.db_table)} WHERE {q(ChainHead._meta.pk.column)} = %s"  # nosec B608: names from the model's metadata, the value bound
    return sql + (" FOR UPDATE" if connection.features.has_select_for_update else "")


def _read_head() -> ChainHead | None:
    return next(iter(ChainHead.objects.raw(_lock_head_sql(connection.vendor), [1])), None)


def _lock_head() -> ChainHead:
    head = _read_head()
    if head is None:
        try:
            with transaction.atomic():
                ChainHead.objects.create(pk=1)
        except IntegrityError:
            pass  # another writer created it first; lock theirs
        head = _read_head()
    return head


class _Deferred(threading.local):
    """Events recorded directly inside a ``deferred()`` block, waiting to be chained at its end."""

    def __init__(self):
        self.depth: int | None = None  # the atomic depth of the open block, or None
        self.events: list[AuditEvent] = []


_deferred = _Deferred()


@contextmanager
def deferred():
    """A transaction whose audit events are chained together at its end, under one short lock.

    The chain head is a single row: whoever appends holds its lock until COMMIT, so every writer
    waits for the one before it. A service that does its reads and writes first and records its
    events here holds the lock only for the append itself (lock, an INSERT of the events, one of
    the Merkle nodes they complete, one UPDATE) instead of from its first event to its commit. Events recorded in a nested ``atomic`` block, which may
    be rolled back on its own, are appended at once, as outside the block; if the block raises,
    the transaction rolls back and its waiting events with it. A block inside a block is such a
    nested ``atomic`` block: its events are appended at once."""
    with transaction.atomic():
        if _deferred.depth is not None:
            yield
            return
        _deferred.depth = len(connection.atomic_blocks)
        try:
            yield
            _append(_deferred.events)
        finally:
            _deferred.depth = None
            _deferred.events = []


def _append(events: list[AuditEvent]) -> None:
    """Chain ``events`` after the head and write them, in the current transaction."""
    if not events:
        return
    channels = webhooks.channels_for(events)  # read before the head is locked: it waits for no one
    head = _lock_head()
    sequence, prev_hash = head.sequence, head.hash
    for event in events:
        sequence += 1
        event.sequence, event.prev_hash = sequence, prev_hash
        event.hash = prev_hash = compute_hash(event, prev_hash)
    AuditEvent.objects.bulk_create(events)
    grown = tree.grow(head, events)  # the Merkle nodes they complete: one more INSERT, O(log n) hashes
    ChainHead.objects.filter(pk=1).update(sequence=sequence, hash=prev_hash, **grown)
    webhooks.emit(events, channels)  # the domain webhooks they trigger, queued in the same transaction


def record(
    action: str,
    *,
    actor=None,
    target=None,
    environment: str = "",
    team: str = "",
    data: dict | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event in the current transaction. ``target`` is any model instance (or None);
    ``environment`` and ``team`` are slugs, kept as text so the log outlives the rows it names.

    Inside a ``deferred()`` block the event is chained at the block's end (its ``sequence`` and
    ``hash`` are set then)."""
    ctx = context.current()
    event = AuditEvent(
        created_at=at or timezone.now(),
        actor=actor if actor is not None and actor.pk else None,
        actor_username=getattr(actor, "username", "") or "",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        environment=environment or "",
        team=team or "",
        ip=ctx.ip,
        user_agent=ctx.user_agent,
        request_id=ctx.request_id,
        data=json_safe(data),
    )
    if _deferred.depth == len(connection.atomic_blocks):  # directly inside a deferred() block
        _deferred.events.append(event)
        return event
    # One transaction for the three statements, without a savepoint of its own: a failed append
    # fails the caller's transaction, as it must.
    with transaction.atomic(savepoint=False):
        _append([event])
    return event


@dataclass(frozen=True)
class Break:
    sequence: int
    event_id: int | None
    problem: str

    def __str__(self):
        return f"event #{self.sequence} (id {self.event_id}): {self.problem}"


def verify(batch_size: int = 5000) -> tuple[int, Break | None]:
    """Recompute the whole chain. Returns (events checked, first break or None).

    The head is read first and the walk stops there: an event and the head move in one
    transaction, so every event up to the head read is committed, and writers appending while a
    long verification runs cannot look like a broken tail."""
    head = ChainHead.objects.filter(pk=1).first()
    expected_sequence = 1
    prev_hash = GENESIS
    checked = 0
    queryset = AuditEvent.objects.order_by("sequence")
    if head is not None:
        queryset = queryset.filter(sequence__lte=head.sequence)
    for event in queryset.iterator(chunk_size=batch_size):
        if event.sequence != expected_sequence:
            return checked, Break(expected_sequence, None, f"missing; next present is #{event.sequence}")
        if event.prev_hash != prev_hash:
            return checked, Break(event.sequence, event.pk, "prev_hash does not match the previous event")
        if compute_hash(event, prev_hash) != event.hash:
            return checked, Break(event.sequence, event.pk, "content does not match its hash")
        prev_hash = event.hash
        expected_sequence += 1
        checked += 1
    if head is not None and head.sequence != checked:
        return checked, Break(
            checked + 1, None, f"chain head says #{head.sequence} but the log ends at #{checked}"
        )
    if head is not None and checked and head.hash != prev_hash:
        return checked, Break(checked, None, "the chain head's hash is not the last event's hash")
    return checked, None
