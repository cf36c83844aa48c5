"""Domain webhooks (issue 19 item 4, docs/webhooks.md): the services' events reach the channels
that subscribe to them, after commit, signed over ``t.body``, at least once through the outbox."""
import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.db import transaction

import audit
from audit import outbox, webhooks
from audit.models import NotificationChannel, OutboxMessage
from governance import services as grants
from governance.controls.services import control_change
from governance.models import ControlChange, Role
from releases import services
from tests.releases.conftest import now  # noqa: F401 (fixture)
from tests.releases.stories import approved_in_staging, pending
from tests.webhooks.conftest import SECRET


def channel(url, events="*", **fields):
    return NotificationChannel.objects.create(name="integrations", kind="webhook", target=url, secret=SECRET,
                                              events=events, **fields)


def test_a_change_request_lifecycle_reaches_the_receiver_signed(demo, now, receiver,  # noqa: F811
                                                                django_capture_on_commit_callbacks):
    receiver.start()
    channel(receiver.url, events="change_request.*, deployment.*")

    with django_capture_on_commit_callbacks(execute=True):
        cr = approved_in_staging(demo, now)
    with django_capture_on_commit_callbacks(execute=True):
        deployment = services.deployment_start(actor=demo.ops, change_request=cr, at=now)
    with django_capture_on_commit_callbacks(execute=True):
        services.deployment_finish(actor=demo.ops, deployment=deployment, outcome="succeeded", at=now)
    with django_capture_on_commit_callbacks(execute=True):
        services.deployment_rollback(actor=demo.ops, deployment=deployment, reason="Latency doubled", at=now)

    assert receiver.events() == ["change_request.submitted", "change_request.approved", "deployment.started",
                                 "deployment.finished", "deployment.rolled_back"]
    assert all(r["verified"] for r in receiver.received)
    for got in receiver.domain():
        assert got["headers"]["X-Countersign-Event"] == got["json"]["event"]
        assert got["headers"]["X-Countersign-Delivery"] == str(got["json"]["id"])
    approved = receiver.domain()[1]["json"]
    assert approved["actor"] == "rev" and approved["environment"] == "staging" and approved["team"] == "payments"
    assert approved["target"] == {"type": "releases.changerequest", "id": str(cr.pk), "repr": str(cr)[:255]}
    assert approved["data"]["change_request"] == cr.pk and approved["data"]["to_state"] == "approved"
    assert receiver.domain()[3]["json"]["data"]["outcome"] == "succeeded"
    sequences = [r["json"]["sequence"] for r in receiver.domain()]
    assert sequences == sorted(sequences)
    assert audit.models.AuditEvent.objects.get(sequence=sequences[1]).action == "change_request.approved"


def test_grants_control_changes_and_alerts_are_events_too(demo, now, receiver,  # noqa: F811
                                                          django_capture_on_commit_callbacks):
    receiver.start()
    channel(receiver.url, events="role_assignment.*, control_change.*, alert.*")

    with django_capture_on_commit_callbacks(execute=True):
        grant = grants.role_grant(actor=demo.mgr, user=demo.dev2, role=Role.objects.get(slug="reviewer"),
                                  team=demo.payments, environment=demo.staging, justification="Cover rev")
    with django_capture_on_commit_callbacks(execute=True):
        grants.role_assignment_revoke(actor=demo.mgr, assignment=grant, reason="Back")
    with django_capture_on_commit_callbacks(execute=True):
        from audit.alerts import raise_alert

        raise_alert("test_signal", subject="something odd", team="payments")
    with django_capture_on_commit_callbacks(execute=True):
        control_change(actor=demo.admin, kind="audit.notificationchannel", values={
            "name": "Security mail", "kind": "email", "target": "security@example.com"})

    assert receiver.events() == ["role_assignment.granted", "role_assignment.revoked", "alert.raised",
                                 "control_change.applied"]
    assert receiver.domain()[0]["json"]["data"]["user"] == "dev2"
    assert all(r["verified"] for r in receiver.received)


def test_each_channel_gets_only_what_it_subscribes_to(demo, now, receiver,  # noqa: F811
                                                      django_capture_on_commit_callbacks):
    receiver.start()
    channel(receiver.url, events="change_request.approved")
    channel(receiver.url, events="deployment.*", team="identity")  # another team's deployments only
    channel(receiver.url, events="")  # notifications only
    channel(receiver.url, events="*", is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        cr = approved_in_staging(demo, now)
    with django_capture_on_commit_callbacks(execute=True):
        services.deployment_start(actor=demo.ops, change_request=cr, at=now)

    assert receiver.events() == ["change_request.approved"]


def test_a_rolled_back_change_sends_nothing(demo, now, receiver, django_capture_on_commit_callbacks):  # noqa: F811
    receiver.start()
    cr = pending(demo, now)
    channel(receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            services.change_request_approve(actor=demo.rev, change_request=cr, at=now)
            raise RuntimeError("the caller's transaction fails after the service")

    assert receiver.received == []
    assert not OutboxMessage.objects.filter(topic=webhooks.TOPIC).exists()


def test_a_receiver_down_gets_the_delivery_later_with_the_same_id(demo, now, receiver,  # noqa: F811
                                                                  django_capture_on_commit_callbacks):
    channel(receiver.url, events="change_request.approved")
    with django_capture_on_commit_callbacks(execute=True):
        approved_in_staging(demo, now)  # nobody listens: the approval commits all the same
    message = OutboxMessage.objects.get(topic=webhooks.TOPIC)
    assert message.delivered_at is None and message.attempts == 1 and message.last_error

    receiver.statuses = [500]
    receiver.start()
    OutboxMessage.objects.filter(pk=message.pk).update(available_at=message.available_at - timedelta(hours=1))
    assert outbox.deliver(message.pk) == "retrying"  # answered 500: not delivered
    OutboxMessage.objects.filter(pk=message.pk).update(available_at=message.available_at - timedelta(hours=1))
    assert outbox.deliver(message.pk) == "delivered"
    assert outbox.deliver(message.pk) == "skipped"

    assert [r["headers"]["X-Countersign-Delivery"] for r in receiver.received] == [str(message.pk)] * 2
    assert all(r["verified"] for r in receiver.received)
    assert receiver.received[0]["body"] == receiver.received[1]["body"]


def test_a_replayed_or_tampered_delivery_fails_the_documented_check(demo, now, receiver,  # noqa: F811
                                                                    django_capture_on_commit_callbacks):
    receiver.start()
    channel(receiver.url, events="change_request.approved")
    with django_capture_on_commit_callbacks(execute=True):
        approved_in_staging(demo, now)
    got = receiver.domain()[0]
    header, body = got["headers"]["X-Countersign-Signature"], got["body"]
    stamp = int(header.split(",")[0].removeprefix("t="))

    assert abs(stamp - time.time()) < 60
    independent = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={stamp},v1={independent}"
    assert receiver.verify(SECRET.encode(), body, header)
    assert not receiver.verify(SECRET.encode(), body, header, now=stamp + 301)  # replayed later
    assert receiver.verify(SECRET.encode(), body, header, now=stamp + 299)
    assert b'"actor": "rev"' in body
    assert not receiver.verify(SECRET.encode(), body.replace(b'"actor": "rev"', b'"actor": "dev"'), header)
    assert not receiver.verify(b"another secret", body, header)
    forged_time = header.replace(f"t={stamp}", f"t={stamp + 1000}")
    assert not receiver.verify(SECRET.encode(), body, forged_time, now=stamp + 1000)
    assert json.loads(body)["event"] == "change_request.approved"


def test_unsubscribing_an_event_waits_for_a_second_person(demo):
    webhook = channel("https://hooks.example.com/countersign", events="change_request.*, alert.*")
    change = control_change(actor=demo.admin, kind="audit.notificationchannel", target=webhook,
                            values={"events": "change_request.*"})
    assert change.status == ControlChange.Status.PENDING
    assert "events" in {w["field"] for w in change.weakening}
    assert NotificationChannel.objects.get(pk=webhook.pk).events == "change_request.*, alert.*"

    other = channel("https://siem.example.com/countersign", events="alert.*")
    added = control_change(actor=demo.admin, kind="audit.notificationchannel", target=other,
                           values={"events": "alert.*, deployment.*"})
    assert added is None or added.status != ControlChange.Status.PENDING
    assert NotificationChannel.objects.get(pk=other.pk).events == "alert.*, deployment.*"
