"""More of E2, C10 and E3: a broken chain, an overdue post-implementation review, email delivery,
a broker outage, and the rubber-stamp check as the approval service runs it."""
from datetime import timedelta

from django.utils import timezone

from audit import chain_watch, outbox
from audit.chain import record
from audit.models import Alert, NotificationChannel, OutboxMessage
from audit.notifications import notify
from audit.tasks import deliver_outbox
from releases import escalation, services
from releases.demo import working_morning
from releases.models import ChangeRequest
from tests.audit.rawsql import drop_triggers, set_event_data


def test_an_intact_chain_raises_nothing_and_a_tampered_one_raises_a_critical_alert(db):
    for n in range(3):
        record("test.event", data={"n": n})
    assert chain_watch.verify_and_alert() is True
    assert not Alert.objects.exists()
    drop_triggers()  # rolled back with the test's transaction
    set_event_data(2, '{"n": 99}')
    assert chain_watch.verify_and_alert() is False
    alert = Alert.objects.get(kind="audit_chain_broken")
    assert alert.severity == "critical" and alert.details["sequence"] == 2
    assert chain_watch.verify_and_alert() is False
    assert Alert.objects.filter(kind="audit_chain_broken").count() == 1  # one open alert per break


def _deployed_emergency(demo, at):
    from tests.factories import bootstrap_grant

    bootstrap_grant(demo.rev, "reviewer", demo.payments, demo.development)
    cr = services.change_request_create(actor=demo.dev, team=demo.payments, environment=demo.development,
                                        title="Hotfix", artifact="payments-api:hotfix", change_type="emergency",
                                        emergency_reason="Checkout is down.", at=at)
    services.change_request_submit(actor=demo.dev, change_request=cr, at=at)
    services.change_request_approve(actor=demo.rev, change_request=cr, at=at + timedelta(minutes=2))  # C10: one
    bootstrap_grant(demo.ops, "operations", demo.payments, demo.development)
    deployment = services.deployment_start(actor=demo.ops, change_request=cr, at=at + timedelta(minutes=5))
    services.deployment_finish(actor=demo.ops, deployment=deployment, outcome="succeeded", at=at + timedelta(minutes=9))
    return ChangeRequest.objects.get(pk=cr.pk)


def test_an_overdue_post_implementation_review_raises_one_alert(demo):
    at = timezone.now()
    cr = _deployed_emergency(demo, at)
    assert escalation.pir_overdue_scan(at=cr.pir_due_at - timedelta(minutes=1)) == 0
    assert escalation.pir_overdue_scan(at=cr.pir_due_at + timedelta(minutes=1)) == 1
    assert escalation.pir_overdue_scan(at=cr.pir_due_at + timedelta(hours=2)) == 0
    assert Alert.objects.get(kind="pir_overdue").details["change_request"] == cr.pk


def test_a_reviewed_emergency_change_raises_nothing(demo):
    at = timezone.now()
    cr = _deployed_emergency(demo, at)
    services.change_request_review_pir(actor=demo.rev, change_request=cr, notes="Root cause fixed.",
                                       at=at + timedelta(hours=1))
    assert escalation.pir_overdue_scan(at=cr.pir_due_at + timedelta(hours=1)) == 0


def test_email_channels_and_recipients_get_mail(db, mailoutbox, django_capture_on_commit_callbacks):
    NotificationChannel.objects.create(name="security mail", kind="email", target="sec@example.com, soc@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        notify("alert", subject="Rubber stamp", body="rev approved in 3 s", recipients=["mgr@example.com"])
    assert sorted(tuple(m.to) for m in mailoutbox) == [("mgr@example.com",), ("sec@example.com", "soc@example.com")]
    assert {m.subject for m in mailoutbox} == {"Rubber stamp"}


def test_a_broker_outage_fails_nothing_and_loses_nothing(db, mailoutbox, monkeypatch,
                                                         django_capture_on_commit_callbacks):
    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("redis is down")

    monkeypatch.setattr(deliver_outbox, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        notify("alert", subject="s", body="b", recipients=["sec@example.com"])
    message = OutboxMessage.objects.get()
    assert message.dispatched_at is None and message.delivered_at is None and not mailoutbox

    monkeypatch.undo()  # the broker is back
    assert outbox.sweep() == 1
    assert outbox.sweep() == 0
    message.refresh_from_db()
    assert message.delivered_at is not None and len(mailoutbox) == 1


def test_the_approval_service_flags_a_rubber_stamp(demo):
    at = working_morning(timezone.now()) + timedelta(hours=2)  # a weekday, 11:00 UTC: no off-hours alert
    cr = services.change_request_create(actor=demo.dev, team=demo.payments, environment=demo.staging,
                                        title="Quick one", artifact="payments-api:quick", at=at)
    services.change_request_submit(actor=demo.dev, change_request=cr, at=at)
    services.change_request_approve(actor=demo.rev, change_request=cr, at=at + timedelta(seconds=12))
    alert = Alert.objects.get(kind="rubber_stamp")
    assert alert.actor == demo.rev and alert.details["seconds"] == 12.0
    slow = services.change_request_create(actor=demo.dev, team=demo.payments, environment=demo.staging,
                                          title="Considered", artifact="payments-api:slow", at=at)
    services.change_request_submit(actor=demo.dev, change_request=slow, at=at)
    services.change_request_approve(actor=demo.rev, change_request=slow, at=at + timedelta(minutes=20))
    assert Alert.objects.filter(kind="rubber_stamp").count() == 1
