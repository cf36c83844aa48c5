"""E3: signed webhooks are delivered after commit, and a receiver that is down never blocks the
action; the delivery is retried until it lands, exactly once."""
import hashlib
import hmac
import json
from datetime import timedelta

from django.utils import timezone

from audit import outbox
from audit.models import NotificationChannel, OutboxMessage
from audit.notifications import notify
from releases import services
from releases.models import ChangeRequest


def _webhook(url, secret="s3cret", **extra):
    return NotificationChannel.objects.create(name="sec hook", kind="webhook", target=url, secret=secret, **extra)


def test_signed_payload_arrives_and_verifies(db, receiver, django_capture_on_commit_callbacks):
    receiver.start()
    _webhook(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        notify("alert", subject="Rubber stamp", body="rev approved in 3 s", team="payments", data={"alert": 7})
    assert len(receiver.received) == 1
    got = receiver.received[0]
    stamp = got["headers"]["X-Countersign-Signature"].split(",")[0].removeprefix("t=")
    expected = hmac.new(b"s3cret", stamp.encode() + b"." + got["body"], hashlib.sha256).hexdigest()
    assert got["headers"]["X-Countersign-Signature"] == f"t={stamp},v1={expected}"
    assert got["json"]["kind"] == "alert" and got["json"]["data"] == {"alert": 7}
    message = OutboxMessage.objects.get()
    assert got["headers"]["X-Countersign-Delivery"] == str(message.pk)
    assert message.delivered_at is not None and message.attempts == 1


def test_tampered_body_fails_verification(db, receiver, django_capture_on_commit_callbacks):
    receiver.start()
    _webhook(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        notify("alert", subject="x", body="y")
    got = receiver.received[0]
    forged = got["body"].replace(b'"y"', b'"z"')
    stamp = got["headers"]["X-Countersign-Signature"].split(",")[0].removeprefix("t=")
    digest = hmac.new(b"s3cret", stamp.encode() + b"." + forged, hashlib.sha256).hexdigest()
    assert f"t={stamp},v1={digest}" != got["headers"]["X-Countersign-Signature"]


def test_receiver_down_action_succeeds_and_delivery_is_retried_once(demo, receiver, django_capture_on_commit_callbacks):
    _webhook(receiver.url, topics="alert")  # nothing listens yet
    cr = ChangeRequest.objects.get(title="Rotate webhook signing secret", environment=demo.production)
    with django_capture_on_commit_callbacks(execute=True):
        # The approval itself must succeed whatever the receiver does; the alert it raises is queued.
        from audit.alerts import raise_alert

        # Half an hour after the demo's sign-offs: working hours, so no off-hours alert joins in.
        deployment = services.deployment_start(actor=demo.ops, change_request=cr,
                                               at=cr.approved_at + timedelta(minutes=30))
        raise_alert("test_signal", subject="receiver is down", dedupe_key="down-test")
    assert deployment.pk is not None
    message = OutboxMessage.objects.get(topic="notification.deliver")
    assert message.delivered_at is None and message.attempts == 1
    assert "Connection refused" in message.last_error or "URLError" in message.last_error
    assert message.available_at > timezone.now()

    receiver.start()
    OutboxMessage.objects.filter(pk=message.pk).update(available_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.sweep() == 1
    message.refresh_from_db()
    assert message.delivered_at is not None and message.attempts == 2
    assert len(receiver.received) == 1
    # Handing the same message over again delivers nothing more.
    assert outbox.deliver(message.pk) == "skipped"
    assert len(receiver.received) == 1


def test_slack_channel_gets_slack_json(db, receiver, django_capture_on_commit_callbacks):
    receiver.start()
    NotificationChannel.objects.create(name="slack", kind="slack", target=receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        notify("escalation", subject="CR-4 waits", body="since noon")
    assert receiver.received[0]["json"] == {"text": "*CR-4 waits*\nsince noon"}


def test_channel_filters_by_team_and_topic(db, receiver, django_capture_on_commit_callbacks):
    receiver.start()
    _webhook(receiver.url, team="identity", topics="escalation")
    with django_capture_on_commit_callbacks(execute=True):
        assert notify("alert", subject="a", body="b", team="identity") == 0
        assert notify("escalation", subject="a", body="b", team="payments") == 0
        assert notify("escalation", subject="a", body="b", team="identity") == 1
    assert [json.loads(r["body"])["kind"] for r in receiver.received] == ["escalation"]


def test_gives_up_after_max_attempts(db, receiver, django_capture_on_commit_callbacks):
    _webhook(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        notify("alert", subject="a", body="b")
    message = OutboxMessage.objects.get()
    for _ in range(outbox.MAX_ATTEMPTS - 1):
        OutboxMessage.objects.filter(pk=message.pk).update(available_at=timezone.now())
        outbox.deliver(message.pk)
    message.refresh_from_db()
    assert message.attempts == outbox.MAX_ATTEMPTS and message.failed_at is not None
    assert outbox.sweep() == 0
