"""Celery tasks of the compliance room. Thin: each calls one function and is safe to run twice."""
from celery import shared_task

from compliance.evidence import builder


@shared_task(acks_late=True, ignore_result=True)
def build_evidence_export(export_id: int) -> str:
    return builder.build(export_id)


@shared_task(ignore_result=True)
def stream_to_siems() -> dict:
    """Every active SIEM sink, from its cursor on (docs/siem.md). Two runs at once never send one
    sink's batch twice over each other: each batch locks its sink's cursor."""
    from compliance.siem import delivery

    return delivery.deliver_all()
