"""The transactional outbox (ARCHITECTURE.md principle 4, issue "scheduled governance").

A service calls ``enqueue(topic, payload)`` inside its transaction. After commit the message is
handed to Celery; if the broker is down the hand-over fails quietly and the periodic ``sweep``
hands it over later. ``deliver`` runs the topic's handler under a row lock and marks the message
delivered in the same transaction, so each message is delivered once however often it is handed
over; a failing handler is retried with exponential backoff and given up after ``MAX_ATTEMPTS``.
Receivers get the message id (``X-Countersign-Delivery`` for webhooks) to drop the duplicate a
crash between sending and committing could cause.
"""
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import OutboxMessage

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
REDISPATCH_AFTER = timedelta(minutes=2)
_handlers: dict[str, Callable[[dict, OutboxMessage], None]] = {}


def handler(topic: str):
    """Register the function that carries out messages of ``topic``."""

    def register(func):
        _handlers[topic] = func
        return func

    return register


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


def enqueue(topic: str, payload: dict, *, at: datetime | None = None, delay: timedelta | None = None) -> OutboxMessage:
    """Queue one message; with ``delay``, it is not delivered before ``at + delay`` (a retry the
    handler schedules itself, e.g. after the remote end was down)."""
    at = at or timezone.now()
    message = OutboxMessage.objects.create(topic=topic, payload=payload, created_at=at,
                                           available_at=at + delay if delay else at)
    countdown = delay.total_seconds() if delay else None
    transaction.on_commit(lambda: dispatch(message.pk, countdown=countdown), robust=True)
    return message


def dispatch(message_id: int, *, countdown: float | None = None) -> bool:
    """Hand one message to Celery. Never raises: a broker outage leaves it for the sweep."""
    from audit.tasks import deliver_outbox

    # Stamped before sending: in eager mode the task runs inside apply_async and may clear it.
    OutboxMessage.objects.filter(pk=message_id).update(dispatched_at=timezone.now())
    try:
        deliver_outbox.apply_async(args=[message_id], countdown=countdown, retry=False)
    except Exception as exc:  # noqa: BLE001 - whatever the broker raised, the sweep will retry
        OutboxMessage.objects.filter(pk=message_id).update(dispatched_at=None)
        log.warning("outbox #%s not handed over (%s); the sweep will retry", message_id, exc)
        return False
    return True


def deliver(message_id: int) -> str:
    """Run the handler of one message once. Returns what happened (for logs and tests)."""
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, delivered_at__isnull=True, failed_at__isnull=True)
            .first()
        )
        if message is None:
            return "skipped"
        now = timezone.now()
        if message.available_at > now:
            # Handed over before its backoff ended (eager mode ignores countdowns): the sweep
            # hands it over again once it is due.
            message.dispatched_at = None
            message.save(update_fields=["dispatched_at"])
            return "not-due"
        func = _handlers.get(message.topic)
        message.attempts += 1
        try:
            if func is None:
                raise LookupError(f"no handler for topic {message.topic!r}")
            with transaction.atomic():  # a savepoint: a handler's failed writes roll back alone
                func(message.payload, message)
        except Exception as exc:  # noqa: BLE001 - recorded on the message and retried
            message.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
            if message.attempts >= MAX_ATTEMPTS:
                message.failed_at = now
            else:
                message.available_at = now + backoff(message.attempts)
            message.dispatched_at = None
            message.save(update_fields=["attempts", "last_error", "failed_at", "available_at", "dispatched_at"])
            log.warning("outbox #%s attempt %s failed: %s", message.pk, message.attempts, message.last_error)
            retry_in = None if message.failed_at else (message.available_at - now).total_seconds()
        else:
            message.delivered_at = now
            message.save(update_fields=["attempts", "delivered_at"])
            return "delivered"
    if retry_in is not None:
        transaction.on_commit(lambda: dispatch(message_id, countdown=retry_in), robust=True)
        return "retrying"
    return "failed"


def sweep(*, at: datetime | None = None, limit: int = 500) -> int:
    """Hand over messages that are due and were never handed over, or were lost on the way."""
    at = at or timezone.now()
    due = (
        OutboxMessage.objects.filter(delivered_at__isnull=True, failed_at__isnull=True, available_at__lte=at)
        .exclude(dispatched_at__gt=at - REDISPATCH_AFTER)
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in list(due) if dispatch(pk))
