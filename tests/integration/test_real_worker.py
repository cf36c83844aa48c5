"""The scheduled tasks through a real Celery worker on Redis, against PostgreSQL."""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent, NotificationChannel, OutboxMessage
from governance.models import AccessReview, Membership, Role, RoleAssignment
from releases.models import ChangeRequest
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _seed():
    call_command("seed_demo", stdout=open("/dev/null", "w"))


def test_scheduled_tasks_run_on_the_worker_and_change_the_database(start_worker, send, receiver):
    _seed()
    start_worker()
    grant = RoleAssignment.objects.get(user__username="rev", environment__slug="production")
    RoleAssignment.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    send("governance.tasks.expire_grants")
    wait_for(lambda: RoleAssignment.objects.get(pk=grant.pk).status == "expired", what="the grant to expire")

    send("governance.tasks.start_access_review", "2026-Q4")
    review = wait_for(lambda: AccessReview.objects.filter(period="2026-Q4", status="open").first(), what="campaign")
    assert review.items.count() == RoleAssignment.objects.in_force().count()

    stalled = ChangeRequest.objects.get(state="pending", environment__slug="production")
    ChangeRequest.objects.filter(pk=stalled.pk).update(submitted_at=timezone.now() - timedelta(hours=5))
    send("releases.tasks.escalate_stalled")
    wait_for(lambda: AuditEvent.objects.filter(action="change_request.reminded", target_id=str(stalled.pk)).exists(),
             what="the reminder event")

    # The outbox: a message the broker never got is handed over by the sweep and delivered by the worker.
    receiver.start()
    channel = NotificationChannel.objects.create(name="hook", kind="webhook", target=receiver.url, secret="k")
    message = OutboxMessage.objects.create(
        topic="notification.deliver", created_at=timezone.now(), available_at=timezone.now(),
        payload={"kind": "alert", "subject": "s", "body": "b", "team": "", "data": {}, "channel": channel.pk},
    )
    send("audit.tasks.sweep_outbox")
    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).delivered_at, what="the webhook delivery")
    assert len(receiver.received) == 1
    call_command("audit_verify", stdout=open("/dev/null", "w"))


def test_a_worker_killed_mid_campaign_resumes_it_without_duplicates(start_worker, send, process_env, monkeypatch):
    _seed()
    from django.contrib.auth import get_user_model
    from governance.models import Environment, Team

    team, env = Team.objects.get(slug="payments"), Environment.objects.get(slug="development")
    role = Role.objects.get(slug="developer")
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"load{n}", email=f"load{n}@example.com") for n in range(4000)]
    )
    Membership.objects.bulk_create([Membership(user=u, team=team) for u in users])
    RoleAssignment.objects.bulk_create([
        RoleAssignment(user=u, role=role, team=team, environment=env, justification="load", status="active")
        for u in users
    ])
    expected = RoleAssignment.objects.in_force().count()
    process_env["COUNTERSIGN_REVIEW_BATCH_SIZE"] = "25"

    worker = start_worker()
    send("governance.tasks.start_access_review", "2026-Q3")
    wait_for(lambda: AccessReview.objects.filter(period="2026-Q3").exists() and
             AccessReview.objects.get(period="2026-Q3").items.count() > 100, interval=0.05, what="items to appear")
    worker.kill()
    review = AccessReview.objects.get(period="2026-Q3")
    assert review.status == "building", "the campaign finished before the worker was killed; nothing was shown"
    assert 0 < review.items.count() < expected

    start_worker()  # the unacknowledged task comes back after the visibility timeout
    wait_for(lambda: AccessReview.objects.get(pk=review.pk).status == "open", timeout=90, what="the campaign to finish")
    assert AccessReview.objects.filter(period="2026-Q3").count() == 1
    assert review.items.count() == expected
    assert review.items.values("assignment").distinct().count() == expected
    assert AuditEvent.objects.filter(action="access_review.opened", target_id=str(review.pk)).count() == 1
