"""Celery tasks of the audit core. Thin: each calls one function and is safe to run twice."""
from celery import shared_task

from audit import chain_watch, outbox


@shared_task(acks_late=True, ignore_result=True)
def deliver_outbox(message_id: int) -> str:
    return outbox.deliver(message_id)


@shared_task(ignore_result=True)
def sweep_outbox() -> int:
    return outbox.sweep()


@shared_task(ignore_result=True)
def verify_chain() -> bool:
    return chain_watch.verify_and_alert()


@shared_task(ignore_result=True)
def seal_chain() -> int | None:
    """Hourly: sign the chain head (RULES.md L2). Returns the new seal's number, or None when
    nothing new was recorded. A chain that no longer follows from the last seal is not sealed: the
    full verification runs instead and raises the critical alert."""
    from audit import seals

    from audit import timestamps

    try:
        sealed = seals.seal()
    except seals.SealRefused:
        chain_watch.verify_and_alert()
        return None
    finally:
        timestamps.stamp_pending()  # tokens an authority failed to give earlier (never blocks the seal)
    return sealed.number if sealed is not None else None


@shared_task(ignore_result=True)
def timestamp_seal(number: int) -> int:
    """After each seal: its checkpoint to every active timestamp authority (``audit.timestamps``).
    Returns the tokens stored; a failure alerts and is retried by the next ``seal_chain``."""
    from audit import timestamps

    return timestamps.stamp_seal(number)[0]
