"""Scheduled release governance (thin; each task is safe to run twice)."""
from celery import shared_task

from releases import anomalies, escalation


@shared_task(acks_late=True, ignore_result=True)
def escalate_stalled() -> dict:
    return escalation.escalate_stalled()


@shared_task(acks_late=True, ignore_result=True)
def pir_overdue_scan() -> int:
    return escalation.pir_overdue_scan()


@shared_task(acks_late=True, ignore_result=True)
def reciprocal_scan() -> int:
    return anomalies.reciprocal_scan()
