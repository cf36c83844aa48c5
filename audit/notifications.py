"""Notifications by email and webhook (RULES.md E3), delivered through the outbox so a failing
receiver is retried with backoff and never blocks or fails the action that caused it."""
import hashlib
import hmac
import json
import urllib.parse
import urllib.request

from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder

from audit import outbox
from audit.models import NotificationChannel, OutboxMessage

TOPIC = "notification.deliver"
TIMEOUT_SECONDS = 5


def notify(kind: str, *, subject: str, body: str, team: str = "", recipients=(), data: dict | None = None) -> int:
    """Queue one delivery per matching channel, plus an email to ``recipients`` (addresses).
    Call inside the transaction of the change that causes it. Returns the number queued."""
    queued = 0
    message = {"kind": kind, "subject": subject, "body": body, "team": team, "data": data or {}}
    for channel in NotificationChannel.objects.filter(is_active=True):
        if channel.wants(kind, team):
            outbox.enqueue(TOPIC, {**message, "channel": channel.pk})
            queued += 1
    addresses = sorted({a for a in recipients if a})
    if addresses:
        outbox.enqueue(TOPIC, {**message, "channel": None, "to": addresses})
        queued += 1
    return queued


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, body: bytes, headers: dict) -> None:
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
        send_mail(payload["subject"], payload["body"], settings.DEFAULT_FROM_EMAIL, payload["to"])
        return
    channel = NotificationChannel.objects.filter(pk=payload["channel"], is_active=True).first()
    if channel is None:
        return  # the channel was switched off since; nothing to deliver
    if channel.kind == NotificationChannel.Kind.EMAIL:
        addresses = [a.strip() for a in channel.target.split(",") if a.strip()]
        send_mail(payload["subject"], payload["body"], settings.DEFAULT_FROM_EMAIL, addresses)
    elif channel.kind == NotificationChannel.Kind.SLACK:
        body = json.dumps({"text": f"*{payload['subject']}*\n{payload['body']}"}).encode()
        _post(channel.target, body, {})
    else:
        body = json.dumps(
            {"id": message.pk, "kind": payload["kind"], "subject": payload["subject"], "body": payload["body"],
             "team": payload["team"], "data": payload["data"]},
            cls=DjangoJSONEncoder, sort_keys=True,
        ).encode()
        headers = {"X-Countersign-Delivery": str(message.pk), "X-Countersign-Event": payload["kind"]}
        if channel.secret:
            headers["X-Countersign-Signature"] = sign(channel.secret, body)
        _post(channel.target, body, headers)
