"""Celery tasks of the compliance room. Thin: each calls one function and is safe to run twice."""
from celery import shared_task

from compliance.evidence import builder


@shared_task(acks_late=True, ignore_result=True)
def build_evidence_export(export_id: int) -> str:
    return builder.build(export_id)
