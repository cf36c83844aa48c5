"""User text in notifications is shown, never obeyed (issue 14, class 7): Slack text is escaped as
Slack's formatting rules ask (``&``, ``<``, ``>``), so ``<!channel>`` pings nobody and
``<https://x|text>`` links nowhere; e-mail subjects are one line whatever a title holds; and no
text a user typed stops a delivery. Each story goes through the real doors (the API, the
escalation task, the alert raised by a deployment report) and the real delivery code: a webhook
receiver on 127.0.0.1 and Django's locmem mail backend."""
from datetime import timedelta

import pytest
from django.core import mail

from audit.models import NotificationChannel, OutboxMessage
from audit.notifications import notify
from releases import escalation
from releases.models import ChangeRequest

PING_AND_DISGUISED_LINK = "<!channel> hotfix, see <https://evil.example/login|the runbook> & <@U024BE7LH>"
NEWLINE_TITLE = "Fix login\r\nBcc: everyone@example.com"


def _slack(receiver, **extra):
    receiver.start()
    return NotificationChannel.objects.create(name="slack", kind="slack", target=receiver.url, **extra)


def _submitted_through_the_api(demo, api_as, title: str) -> ChangeRequest:
    client = api_as(demo.dev)
    created = client.post("/api/v1/change-requests/", {"title": title, "team": "payments",
                                                       "environment": "staging", "artifact": "web:42"}, format="json")
    assert created.status_code == 201, created.content
    assert client.post(f"/api/v1/change-requests/{created.json()['id']}/submit/").status_code == 200
    return ChangeRequest.objects.get(pk=created.json()["id"])


def _remind(cr, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        escalation.escalate_stalled(at=cr.submitted_at + timedelta(minutes=241))


def _slack_texts_about(receiver, needle: str) -> list[str]:
    return [r["json"]["text"] for r in receiver.received if needle in r["json"]["text"]]


def _assert_inert(text: str):
    assert "<" not in text and ">" not in text, text
    assert "&lt;!channel&gt;" in text
    assert "&lt;https://evil.example/login|the runbook&gt;" in text
    assert " &amp; &lt;@U024BE7LH&gt;" in text


def test_a_title_reaches_slack_escaped(demo, api_as, receiver, django_capture_on_commit_callbacks):
    _slack(receiver, topics="escalation")
    cr = _submitted_through_the_api(demo, api_as, PING_AND_DISGUISED_LINK)
    _remind(cr, django_capture_on_commit_callbacks)
    [text] = _slack_texts_about(receiver, f"CR-{cr.pk} ")
    _assert_inert(text)


def test_an_artifact_in_an_alert_reaches_slack_escaped(demo, api_as, receiver, django_capture_on_commit_callbacks):
    _slack(receiver, topics="alert")
    with django_capture_on_commit_callbacks(execute=True):
        reported = api_as(demo.ops).post("/api/v1/deployment-reports/",
                                         {"environment": "staging", "artifact": PING_AND_DISGUISED_LINK}, format="json")
    assert reported.status_code == 201, reported.content
    [text] = _slack_texts_about(receiver, "without an approved change request")
    _assert_inert(text)


def test_a_title_with_a_newline_still_gets_its_reminder_email(demo, api_as, django_capture_on_commit_callbacks):
    """Before: the reminder's Subject header held the newline, Django refused to send it, and the
    outbox retried the same refusal until it gave up. Now the subject is one line."""
    cr = _submitted_through_the_api(demo, api_as, NEWLINE_TITLE)
    mail.outbox.clear()
    _remind(cr, django_capture_on_commit_callbacks)
    [reminder] = [m for m in mail.outbox if f"CR-{cr.pk} " in m.subject]
    assert reminder.subject == f"CR-{cr.pk} awaits review: Fix login Bcc: everyone@example.com"
    sent = reminder.message()
    assert sent["Bcc"] is None and sent["Subject"] == reminder.subject
    assert set(reminder.to) == {"rev@example.com", "rev2@example.com", "sec@example.com"}
    assert not OutboxMessage.objects.filter(delivered_at__isnull=True).exists()


def test_an_artifact_with_a_newline_still_reaches_an_email_channel(demo, api_as, django_capture_on_commit_callbacks):
    NotificationChannel.objects.create(name="security mail", kind="email", target="security@example.com",
                                       topics="alert")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reported = api_as(demo.ops).post("/api/v1/deployment-reports/",
                                         {"environment": "staging", "artifact": "web:1\nX-Priority: 1"}, format="json")
    assert reported.status_code == 201, reported.content
    [alert_mail] = mail.outbox
    assert "\n" not in alert_mail.subject and "web:1 X-Priority: 1" in alert_mail.subject
    assert alert_mail.message()["X-Priority"] is None
    assert OutboxMessage.objects.get().delivered_at is not None


# Text the services pass along as typed: line breaks of every kind, control and format characters,
# a lone surrogate (which no UTF-8 encoder accepts), a header of its own.
HOSTILE = [
    "line\nbreak", "carriage\rreturn", "unicode\u2028line\u2029paragraph", "next\x85line", "nul\x00byte",
    "vertical\x0btab\x0cfeed", "right-to-left \u202eoverride", "lone \ud800 surrogate", "Subject: injected\r\n\r\nbody",
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_no_user_text_stops_a_delivery(db, receiver, text, django_capture_on_commit_callbacks):
    receiver.start()
    NotificationChannel.objects.create(name="mail", kind="email", target="security@example.com")
    NotificationChannel.objects.create(name="slack", kind="slack", target=receiver.url)
    NotificationChannel.objects.create(name="hook", kind="webhook", target=receiver.url, secret="s3cret")
    with django_capture_on_commit_callbacks(execute=True):
        queued = notify("alert", subject=f"[high] {text}", body=f"about {text}", team="payments",
                        recipients=["rev@example.com", f"mallory@example.com\r\nBcc: {text}"])
    assert queued == 4
    messages = OutboxMessage.objects.all()
    assert [m.last_error for m in messages if m.delivered_at is None] == []
    assert len(receiver.received) == 2
    assert len(mail.outbox) == 2
    for sent in mail.outbox:
        header = sent.message()["Subject"]
        assert "\n" not in sent.subject and "\r" not in sent.subject and header is not None
    # The address that carried a header of its own is dropped; the honest one still gets the mail.
    assert sorted(address for sent in mail.outbox for address in sent.to) == ["rev@example.com",
                                                                             "security@example.com"]
