"""Domain webhooks (API.md "Outgoing webhooks", docs/webhooks.md): what happened in the services,
pushed to the webhook channels that subscribe to it.

Every service records its audit event in its transaction; the events that integrators care for
(``EVENTS``) are turned into one outbox message per subscribed channel in that same transaction, as
the event is chained. So a delivery exists exactly when its change committed (a rolled-back service
sends nothing), it leaves after commit, and the outbox retries it with backoff until the receiver
answers 2xx: at least once. Each delivery is signed with the channel's secret over ``t.body``
(``X-Countersign-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``), re-signed at every attempt.

A channel subscribes with its ``events`` field: comma-separated names or ``family.*`` / ``*``
patterns (``change_request.approved, deployment.*``); empty subscribes to none. Its ``team``, when
set, keeps only that team's events.
"""
import fnmatch
import json
import time

from django.core.serializers.json import DjangoJSONEncoder

from audit import outbox
from audit.models import AuditEvent, NotificationChannel, OutboxMessage
from audit.notifications import post, signature_header
from core.shapes import Shape

TOPIC = "webhook.deliver"
TOLERANCE_SECONDS = 300  # receivers refuse a signature older (or newer) than this (docs/webhooks.md)

# Audit action -> webhook event. Names on the left are the services' audit actions (RULES.md L1).
EVENTS = {
    "change_request.submitted": "change_request.submitted",
    "change_request.approved": "change_request.approved",
    "change_request.rejected": "change_request.rejected",
    "change_request.changes_requested": "change_request.changes_requested",
    "deployment.started": "deployment.started",
    "deployment.succeeded": "deployment.finished",
    "deployment.failed": "deployment.finished",
    "deployment.rolled_back": "deployment.rolled_back",
    "role.granted": "role_assignment.granted",
    "role.grant_requested": "role_assignment.requested",
    "role.grant_approved": "role_assignment.approved",
    "role.grant_rejected": "role_assignment.rejected",
    "role.revoked": "role_assignment.revoked",
    "role.expired": "role_assignment.expired",
    "role.bootstrapped": "role_assignment.bootstrapped",
    "control.proposed": "control_change.proposed",
    "control.approved": "control_change.approved",
    "control.rejected": "control_change.rejected",
    "control.withdrawn": "control_change.withdrawn",
    "control.expired": "control_change.expired",
    "control.changed": "control_change.applied",
    "alert.raised": "alert.raised",
    "alert.resolved": "alert.resolved",
}
NAMES = sorted(set(EVENTS.values()))
# deployment.finished covers both outcomes, named in its data.
OUTCOMES = {"deployment.succeeded": "succeeded", "deployment.failed": "failed"}


def patterns(text: str) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def subscribes(channel: NotificationChannel, name: str, team: str) -> bool:
    return (
        channel.is_active
        and channel.kind == NotificationChannel.Kind.WEBHOOK
        and (not channel.team or channel.team == team)
        and any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns(channel.events))
    )


def payload(name: str, event: AuditEvent) -> dict:
    """What a receiver gets (besides the delivery ``id``): the event's name, its place in the audit
    trail (``sequence``, to order by and to look it up at ``audit-events/``), and the audit data."""
    return {
        "event": name,
        "sequence": event.sequence,
        "occurred_at": event.created_at,
        "actor": event.actor_username or None,
        "environment": event.environment,
        "team": event.team,
        "target": {"type": event.target_type, "id": event.target_id, "repr": event.target_repr},
        "data": {**event.data, "outcome": OUTCOMES[event.action]} if event.action in OUTCOMES else event.data,
    }


def channels_for(events: list[AuditEvent]) -> list[NotificationChannel]:
    """The active webhook channels, when any of ``events`` is one of ``EVENTS`` (one query; none
    otherwise). ``audit.chain`` reads them before it locks the chain head."""
    if not any(e.action in EVENTS for e in events):
        return []
    return [NotificationChannel(pk=pk, name=name, kind=NotificationChannel.Kind.WEBHOOK, team=team, events=events,
                                is_active=True) for pk, name, team, events in _CHANNELS.rows()]


# What ``emit`` reads of the webhook channels (``subscribes``, the delivery's channel), compiled
# once (core.shapes): it runs at every append of a domain event.
_CHANNELS = Shape(lambda: NotificationChannel.objects.filter(is_active=True, kind=NotificationChannel.Kind.WEBHOOK)
                  .exclude(events="").values_list("pk", "name", "team", "events"))


def emit(events: list[AuditEvent], channels: list[NotificationChannel]) -> int:
    """Queue the deliveries of ``events`` (just chained, in the caller's transaction) to
    ``channels`` (``channels_for(events)``, read before the chain head was locked). Returns the
    number queued."""
    named = [(EVENTS[e.action], e) for e in events if e.action in EVENTS]
    if not named:
        return 0
    queued = 0
    for name, event in named:
        body = json.loads(json.dumps(payload(name, event), cls=DjangoJSONEncoder))
        for channel in channels:
            if subscribes(channel, name, event.team):
                outbox.enqueue(TOPIC, {"channel": channel.pk, "delivery": body})
                queued += 1
    return queued


def body_of(message: OutboxMessage) -> bytes:
    delivery = message.payload["delivery"]
    return json.dumps({"id": message.pk, **delivery}, sort_keys=True, ensure_ascii=False).encode("utf-8")


@outbox.handler(TOPIC)
def deliver(payload: dict, message: OutboxMessage) -> None:
    channel = NotificationChannel.objects.filter(pk=payload["channel"]).first()
    delivery = payload["delivery"]
    if channel is None or not subscribes(channel, delivery["event"], delivery["team"]):
        return  # switched off or unsubscribed since: nothing to deliver
    body = body_of(message)
    headers = {"X-Countersign-Delivery": str(message.pk), "X-Countersign-Event": delivery["event"]}
    if channel.secret:
        headers["X-Countersign-Signature"] = signature_header(channel.secret, body, int(time.time()))
    post(channel.target, body, headers)
