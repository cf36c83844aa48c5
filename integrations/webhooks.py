"""Receiving source-control webhooks (issue 16, item 1): check the platform's signature in
constant time, store each delivery once by its id, and leave the work to the worker (outbox).

GitHub signs the raw body with the repository's webhook secret: ``X-Hub-Signature-256:
sha256=<hex HMAC-SHA256>``, delivery id ``X-GitHub-Delivery``. GitLab sends the secret token
itself in ``X-Gitlab-Token``, delivery id ``X-Gitlab-Event-UUID`` (or ``Idempotency-Key``).
"""
import hashlib
import hmac
import json
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import outbox
from integrations.models import LinkedRepository, WebhookDelivery

TOPIC = "integrations.webhook"
GITHUB, GITLAB = LinkedRepository.Platform.GITHUB, LinkedRepository.Platform.GITLAB


class Unauthenticated(Exception):
    """The delivery does not prove it comes from a linked repository: 401, nothing stored."""


class Malformed(Exception):
    """Not a delivery at all (no JSON object, no event or delivery id): 400, nothing stored."""


@dataclass(frozen=True)
class Received:
    delivery: WebhookDelivery
    duplicate: bool


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _repository_name(platform: str, payload: dict) -> str:
    if platform == GITHUB:
        repository = payload.get("repository")
        return repository.get("full_name", "") if isinstance(repository, dict) else ""
    project = payload.get("project")
    return project.get("path_with_namespace", "") if isinstance(project, dict) else ""


def _authenticate(platform: str, repository: LinkedRepository | None, body: bytes, headers) -> None:
    # A repository nobody linked gets the answer a wrong signature gets, after the same work.
    secret = repository.webhook_secret if repository is not None else ""
    if platform == GITHUB:
        given = headers.get("X-Hub-Signature-256", "").encode()
        ok = hmac.compare_digest(github_signature(secret, body).encode(), given)
        # The GitHub App's deliveries (deployment_protection_rule among them) are signed with the
        # App's one webhook secret; still only for a linked repository.
        app_secret = settings.COUNTERSIGN_GITHUB_WEBHOOK_SECRET
        app_ok = hmac.compare_digest(github_signature(app_secret or secret, body).encode(), given)
        ok = ok or (bool(app_secret) and app_ok)
    else:
        ok = hmac.compare_digest(secret.encode(), headers.get("X-Gitlab-Token", "").encode())
    if repository is None or not repository.is_active or not secret or not ok:
        raise Unauthenticated("The delivery's signature does not match a linked repository's secret.")


def receive(platform: str, body: bytes, headers) -> Received:
    """Check, store once, queue. Raises ``Malformed`` or ``Unauthenticated``."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Malformed("The body is not JSON.") from None
    if not isinstance(payload, dict):
        raise Malformed("The body is not a JSON object.")
    name = _repository_name(platform, payload)
    repository = LinkedRepository.objects.filter(platform=platform, full_name=name).first() if name else None
    _authenticate(platform, repository, body, headers)
    if platform == GITHUB:
        event, delivery_id = headers.get("X-GitHub-Event", ""), headers.get("X-GitHub-Delivery", "")
    else:
        event = headers.get("X-Gitlab-Event", "")
        delivery_id = headers.get("X-Gitlab-Event-UUID", "") or headers.get("Idempotency-Key", "")
    if not event or not delivery_id or len(delivery_id) > 100 or len(event) > 64:
        raise Malformed("The event name and delivery id headers are required.")
    existing = WebhookDelivery.objects.filter(platform=platform, delivery_id=delivery_id).first()
    if existing is not None:
        return Received(existing, duplicate=True)
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                platform=platform, delivery_id=delivery_id, event=event, repository=repository,
                payload=payload, received_at=timezone.now(),
            )
            outbox.enqueue(TOPIC, {"delivery": delivery.pk})
    except IntegrityError:  # the same delivery, received twice at once
        return Received(WebhookDelivery.objects.get(platform=platform, delivery_id=delivery_id), duplicate=True)
    return Received(delivery, duplicate=False)
