"""Notifications by email and webhook (RULES.md E3), delivered through the outbox so a failing
receiver is retried with backoff and never blocks or fails the action that caused it.

Subjects and bodies carry what users typed (titles, artifacts, review names). It is shown, never
obeyed, and never stops a delivery: text is made storable Unicode before it is queued, recipient
addresses that are not one plain address are dropped, e-mail subjects are one line by
construction, and Slack text is escaped as Slack's formatting rules ask."""
import hashlib
import hmac
import json
import time
import unicodedata
import urllib.parse
import urllib.request

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email

from audit import outbox
from audit.models import NotificationChannel, OutboxMessage

TOPIC = "notification.deliver"
TIMEOUT_SECONDS = 5


def _storable(text: str) -> str:
    """``text`` with what no UTF-8 encoder takes (lone surrogates) and what PostgreSQL's jsonb
    refuses (NUL) replaced by U+FFFD, so queueing the message never fails the action."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _one_line(text: str) -> str:
    """An e-mail header value: every control, format and line or paragraph separator character
    becomes a space and runs of whitespace one space, so no text can end the header or add one."""
    spaced = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return " ".join(spaced.split())


def _slack_escaped(text: str) -> str:
    """Slack reads ``<…>`` as commands (``<!channel>``, ``<@user>``, ``<url|label>``) and ``&`` as the
    start of an entity; escaped as its formatting rules ask, user text shows as typed and does nothing."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain_addresses(values) -> list[str]:
    """The values that are one plain e-mail address each (a user's own address is user text)."""
    addresses = set()
    for value in values:
        try:
            validate_email(value)
        except ValidationError:
            continue
        addresses.add(value)
    return sorted(addresses)


def notify(kind: str, *, subject: str, body: str, team: str = "", recipients=(), data: dict | None = None) -> int:
    """Queue one delivery per matching channel, plus an email to ``recipients`` (addresses).
    Call inside the transaction of the change that causes it. Returns the number queued."""
    queued = 0
    message = {"kind": kind, "subject": _storable(subject), "body": _storable(body), "team": team,
               "data": data or {}}
    for channel in NotificationChannel.objects.filter(is_active=True):
        if channel.wants(kind, team):
            outbox.enqueue(TOPIC, {**message, "channel": channel.pk})
            queued += 1
    addresses = _plain_addresses(a for a in recipients if a)
    if addresses:
        outbox.enqueue(TOPIC, {**message, "channel": None, "to": addresses})
        queued += 1
    return queued


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """``X-Countersign-Signature`` (API.md): ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``.
    The timestamp is signed with the body, so a receiver refuses a captured delivery replayed
    later (docs/webhooks.md: a tolerance of ``audit.webhooks.TOLERANCE_SECONDS``)."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post(url: str, body: bytes, headers: dict) -> None:
    # The URL is configured by an administrator; only web schemes, never file: or custom handlers.
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"webhook URL must be http or https, not {url!r}")
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # scheme checked above  # nosec B310
        if response.status >= 300:
            raise RuntimeError(f"webhook answered {response.status}")


@outbox.handler(TOPIC)
def deliver(payload: dict, message: OutboxMessage) -> None:
    if payload.get("channel") is None:
        send_mail(_one_line(payload["subject"]), payload["body"], settings.DEFAULT_FROM_EMAIL, payload["to"])
        return
    channel = NotificationChannel.objects.filter(pk=payload["channel"], is_active=True).first()
    if channel is None:
        return  # the channel was switched off since; nothing to deliver
    if channel.kind == NotificationChannel.Kind.EMAIL:
        addresses = [a.strip() for a in channel.target.split(",") if a.strip()]
        send_mail(_one_line(payload["subject"]), payload["body"], settings.DEFAULT_FROM_EMAIL, addresses)
    elif channel.kind == NotificationChannel.Kind.SLACK:
        text = f"*{_slack_escaped(_one_line(payload['subject']))}*\n{_slack_escaped(payload['body'])}"
        body = json.dumps({"text": text}).encode()
        post(channel.target, body, {})
    else:
        body = json.dumps(
            {"id": message.pk, "kind": payload["kind"], "subject": payload["subject"], "body": payload["body"],
             "team": payload["team"], "data": payload["data"]},
            cls=DjangoJSONEncoder, sort_keys=True,
        ).encode()
        headers = {"X-Countersign-Delivery": str(message.pk), "X-Countersign-Event": payload["kind"]}
        if channel.secret:
            headers["X-Countersign-Signature"] = signature_header(channel.secret, body, int(time.time()))
        post(channel.target, body, headers)
