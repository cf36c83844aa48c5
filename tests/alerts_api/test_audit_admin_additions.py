"""Alerts, notification channels and the delivery queue in the admin: alerts resolved by security
through ``alert_resolve``; channels configured by superusers and security, their secret never shown."""
import pytest

from governance.controls.services import control_change_approve
from governance.models import ControlChange
from django.urls import reverse

from audit.models import Alert, AuditEvent, NotificationChannel, OutboxMessage
from audit.notifications import notify

ALERTS = reverse("admin:audit_alert_changelist")
CHANNELS = reverse("admin:audit_notificationchannel_changelist")
ADD_CHANNEL = reverse("admin:audit_notificationchannel_add")
OUTBOX = reverse("admin:audit_outboxmessage_changelist")
SECRET = "s3cret-hmac-key-0123456789"


def resolve(client, alerts, resolution):
    return client.post(ALERTS, {"action": "resolve_selected", "_selected_action": [a.pk for a in alerts],
                                "index": 0, "resolution": resolution}, follow=True)


def test_security_resolves_selected_alerts_with_a_message_each(demo, client_as, alerts, messages_in):
    response = resolve(client_as(demo.sec), [alerts.rubber, alerts.dormant], "Checked with the team.")

    assert set(messages_in(response)) == {
        f"{alerts.dormant}: not resolved. invalid_state: This alert is already resolved.",
        f"{alerts.rubber}: resolved.",
    }
    rubber = Alert.objects.get(pk=alerts.rubber.pk)
    assert (rubber.status, rubber.resolved_by, rubber.resolution) == ("resolved", demo.sec, "Checked with the team.")
    assert AuditEvent.objects.filter(action="alert.resolved").count() == 1


def test_a_resolution_is_required(demo, client_as, alerts, messages_in, nothing_written):
    with nothing_written():
        response = resolve(client_as(demo.sec), [alerts.rubber], "")

    assert messages_in(response) == [f"{alerts.rubber}: not resolved. resolution: Say what was found and done."]


def test_the_auditor_reads_alerts_but_is_not_offered_resolve(demo, client_as, alerts, nothing_written):
    client = client_as(demo.auditor)

    page = client.get(ALERTS)
    with nothing_written():
        resolve(client, [alerts.rubber], "Looks fine.")

    assert page.status_code == 200 and page.context["cl"].result_count == 3
    assert "resolve_selected" not in page.content.decode()


def test_alerts_filter_by_kind_severity_and_status(demo, client_as, alerts):
    client = client_as(demo.sec)

    assert list(client.get(ALERTS, {"kind": "rubber_stamp"}).context["cl"].result_list) == [alerts.rubber]
    assert list(client.get(ALERTS, {"severity__exact": "high"}).context["cl"].result_list) == [alerts.drift]
    assert list(client.get(ALERTS, {"status__exact": "resolved"}).context["cl"].result_list) == [alerts.dormant]


@pytest.mark.parametrize("persona", ["mgr", "dev"])
def test_others_do_not_see_alerts(demo, client_as, alerts, persona):
    assert client_as(getattr(demo, persona)).get(ALERTS).status_code in (302, 403)


def channel_form(**fields) -> dict:
    return {"name": "Security webhook", "kind": "webhook", "team": "", "target": "https://hooks.example.com/T0/abc",
            "secret": "", "topics": "alert", "is_active": "on", "_save": "Save", **fields}


def test_security_adds_a_channel_whose_secret_is_never_shown_again(demo, client_as):
    client = client_as(demo.sec)

    assert client.post(ADD_CHANNEL, channel_form(secret=SECRET)).status_code == 302
    channel = NotificationChannel.objects.get()
    change = reverse("admin:audit_notificationchannel_change", args=[channel.pk])
    listing = client.get(CHANNELS).content.decode()
    page = client.get(change).content.decode()

    assert channel.secret == SECRET
    assert SECRET not in listing and SECRET not in page
    assert "/T0/abc" not in listing  # a webhook URL can itself be a credential
    event = AuditEvent.objects.get(action="control.changed", data__kind="audit.notificationchannel")
    assert event.actor_username == "sec" and event.data["operation"] == "create"
    assert event.data["after"]["secret"].startswith("set (sha256 ")
    assert SECRET not in str(event.data)


def test_saving_without_a_secret_keeps_the_stored_one_and_clearing_removes_it(demo, client_as):
    client = client_as(demo.sec)
    client.post(ADD_CHANNEL, channel_form(secret=SECRET))
    channel = NotificationChannel.objects.get()
    change = reverse("admin:audit_notificationchannel_change", args=[channel.pk])

    client.post(change, channel_form(topics="alert,escalation"))
    kept = NotificationChannel.objects.get()
    client.post(change, channel_form(topics="alert,escalation", clear_secret="on"))
    held = NotificationChannel.objects.get()
    proposal = ControlChange.objects.get(kind="audit.notificationchannel", status="pending")
    control_change_approve(actor=demo.admin, change=proposal)
    cleared = NotificationChannel.objects.get()

    assert (kept.secret, kept.topics) == (SECRET, "alert,escalation")
    assert held.secret == SECRET  # a receiver checks signatures with it: removing it is a weakening change
    assert cleared.secret == ""
    changes = [(e.action, e.data["changed"]) for e in AuditEvent.objects.filter(
        action__startswith="control.", data__kind="audit.notificationchannel").order_by("sequence")[1:]]
    assert changes == [("control.changed", ["topics"]), ("control.proposed", ["secret"]),
                       ("control.approved", ["secret"])]
    assert SECRET not in str(list(AuditEvent.objects.values_list("data", flat=True)))


@pytest.mark.parametrize("persona, status", [("mgr", 403), ("auditor", 403), ("admin", 200)])
def test_only_superusers_and_security_configure_channels(demo, client_as, persona, status):
    client = client_as(getattr(demo, persona))
    assert client.get(ADD_CHANNEL).status_code == status
    assert client.get(OUTBOX).status_code == status


def test_channels_are_switched_off_not_deleted(demo, client_as):
    client = client_as(demo.sec)
    client.post(ADD_CHANNEL, channel_form())
    channel = NotificationChannel.objects.get()

    response = client.post(reverse("admin:audit_notificationchannel_delete", args=[channel.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert NotificationChannel.objects.filter(pk=channel.pk).exists()


def test_the_outbox_is_read_only(demo, client_as):
    notify("alert", subject="s", body="b", recipients=["sec@example.com"])
    message = OutboxMessage.objects.latest("pk")
    client = client_as(demo.sec)

    listing = client.get(OUTBOX)
    page = client.get(reverse("admin:audit_outboxmessage_change", args=[message.pk]))
    post = client.post(reverse("admin:audit_outboxmessage_change", args=[message.pk]), {"attempts": 9})

    assert listing.status_code == 200 and message in listing.context["cl"].result_list
    assert page.status_code == 200 and 'name="attempts"' not in page.content.decode()
    assert post.status_code == 403
    assert client.get(reverse("admin:audit_outboxmessage_add")).status_code == 403


def test_the_alert_changelist_costs_the_same_queries_at_two_sizes(demo, client_as, alerts):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit.alerts import raise_alert

    client = client_as(demo.sec)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(ALERTS).status_code == 200
        return len(captured)

    client.get(ALERTS)
    small = queries()
    for n in range(30):
        alert, _ = raise_alert("rubber_stamp", subject=f"fast {n}", actor=demo.rev, dedupe_key=f"rs:{n}")
        if n % 2:
            Alert.objects.filter(pk=alert.pk).update(status="resolved", resolved_by=demo.sec, resolution="ok")
    large = queries()

    assert large == small
