"""Issue 7, point 4: no lost work when Redis is down. An approval made over the API while the broker
is stopped commits (2xx, approval row, audit event) and leaves its notification in the outbox; once
Redis is back the sweep hands it to a real Celery worker, and the webhook receives it exactly once.

Everything runs in production shape against a Redis of the test's own (servers.RedisServer), so
stopping it disturbs no one: gunicorn serves the API, a Celery worker consumes from that Redis, and
a local HTTP receiver on 127.0.0.1 counts the deliveries by their ``X-Countersign-Delivery`` id."""
import json
import time
from collections import Counter

import pytest
from celery import Celery
from kombu import Connection
from django.core.management import call_command

from audit.models import AuditEvent, NotificationChannel, OutboxMessage
from governance import services as governance_services
from releases.models import Approval, ChangeRequest
from tests.integration.conftest import database_url
from tests.resilience.servers import Gunicorn, server_env, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.resilience, pytest.mark.django_db(transaction=True)]


def _token(username: str) -> str:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=username)
    return governance_services.api_token_create(actor=None, user=user, name="resilience")[1]


def test_an_approval_commits_while_redis_is_down_and_its_notification_arrives_once(
    redis_server, receiver, process_env, queue, start_worker, tmp_path
):
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    receiver.start()
    NotificationChannel.objects.create(name="security hook", kind="webhook", target=receiver.url, secret="k",
                                       topics="alert")
    process_env["CELERY_BROKER_URL"] = redis_server.url  # the worker and the web: the test's own Redis
    start_worker()
    web = Gunicorn(server_env(database_url(), tmp_path / "var", CELERY_BROKER_URL=redis_server.url,
                              CELERY_TASK_DEFAULT_QUEUE=queue), tmp_path / "gunicorn.log", workers=1).start()
    try:
        dev, rev = _token("dev"), _token("rev")
        status, _, body = web.request("POST", "/api/v1/change-requests/", token=dev, body={
            "title": "Approved while Redis is down", "team": "payments", "environment": "staging",
            "artifact": "payments-api:redis-outage"})
        assert status == 201, body
        cr = json.loads(body)["id"]
        status, _, body = web.request("POST", f"/api/v1/change-requests/{cr}/submit/", token=dev)
        assert status == 200, body
        before = set(OutboxMessage.objects.values_list("pk", flat=True))

        redis_server.stop()
        started = time.monotonic()
        status, _, body = web.request("POST", f"/api/v1/change-requests/{cr}/approve/", token=rev,
                                      body={"revision": 1, "comment": "Fine."}, timeout=60)
        approve_seconds = time.monotonic() - started
        assert status == 200, body
        assert approve_seconds < 5, f"the approval waited {approve_seconds:.1f} s for the missing broker"
        assert json.loads(body)["state"] == "approved"
        # Committed in full: the approval, its audit event, and the notification waiting in the outbox.
        assert Approval.objects.filter(change_request_id=cr, reviewer__username="rev", decision="approved").count() == 1
        assert ChangeRequest.objects.get(pk=cr).state == "approved"
        assert AuditEvent.objects.filter(action="change_request.approved", target_id=str(cr)).count() == 1
        # Approving seconds after submission raises a rubber-stamp alert, which notifies the hook.
        messages = OutboxMessage.objects.exclude(pk__in=before)
        assert messages.count() >= 1
        assert all(m.delivered_at is None and m.dispatched_at is None for m in messages), "handed over with no broker?"
        pending = set(messages.values_list("pk", flat=True))
        time.sleep(2)
        assert receiver.received == [], "delivered while Redis was down"

        redis_server.start()  # same port: the worker and the web reconnect by themselves
        # What beat does every minute: ask a worker to sweep. The connection is explicit because
        # Celery prefers a CELERY_BROKER_URL in the environment to any broker it is given, and the
        # app is not made current, so the test process's own tasks stay eager for later tests.
        beat, broker = Celery(set_as_current=False), Connection(redis_server.url)

        def sweep():
            beat.send_task("audit.tasks.sweep_outbox", queue=queue, connection=broker)

        try:
            def sweep_delivered():
                sweep()
                time.sleep(1)
                return not OutboxMessage.objects.filter(pk__in=pending, delivered_at__isnull=True).exists()

            wait_for(sweep_delivered, timeout=90, interval=1, what="the sweep to deliver the outbox")
            for _ in range(3):  # sweeping again delivers nothing twice
                sweep()
            time.sleep(3)
        finally:
            broker.release()
            beat.close()
    finally:
        web.stop()

    deliveries = Counter(int(r["headers"]["X-Countersign-Delivery"]) for r in receiver.received)
    assert set(deliveries) == pending, (deliveries, pending)
    assert all(n == 1 for n in deliveries.values()), f"delivered more than once: {deliveries}"
    assert {r["json"]["kind"] for r in receiver.received} == {"alert"}
    assert any("rubber" in r["json"]["body"] for r in receiver.received)
    assert all(m.attempts == 1 for m in OutboxMessage.objects.filter(pk__in=pending))
    print(f"approve with Redis down answered in {approve_seconds:.2f} s; {len(pending)} notification(s) "
          f"delivered once each after Redis came back")
    call_command("audit_verify", stdout=open("/dev/null", "w"))
