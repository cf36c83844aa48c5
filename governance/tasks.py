"""Scheduled governance (thin: each task calls one service and is safe to run twice)."""
from celery import shared_task
from django.utils import timezone

from governance import creep, services
from governance.controls.services import control_changes_expire_due


def current_quarter(at=None) -> str:
    at = at or timezone.now()
    return f"{at.year}-Q{(at.month - 1) // 3 + 1}"


@shared_task(acks_late=True, ignore_result=True)
def expire_grants() -> int:
    return services.role_assignments_expire_due()


@shared_task(acks_late=True, ignore_result=True)
def expire_control_proposals() -> int:
    return control_changes_expire_due()


@shared_task(acks_late=True, ignore_result=True)
def creep_scan() -> dict:
    return creep.creep_scan()


@shared_task(acks_late=True, ignore_result=True)
def start_access_review(period: str | None = None, team_id: int | None = None) -> int:
    from governance.models import Team

    team = Team.objects.get(pk=team_id) if team_id else None
    return services.access_review_start(period=period or current_quarter(), team=team).pk


@shared_task(acks_late=True, ignore_result=True)
def escalate_access_reviews() -> dict:
    return services.access_reviews_escalate()


@shared_task(acks_late=True, ignore_result=True)
def close_overdue_access_reviews() -> int:
    return services.access_reviews_close_overdue()
