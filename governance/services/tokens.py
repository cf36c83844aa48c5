"""API keys (API.md): issued by their owner only (a key acts as its user), stored hashed, revoked by
the owner or an administrator, their last use recorded at most once a minute."""
import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from core.errors import Denied, InvalidState, Reason
from governance.models import ApiToken


@transaction.atomic
def api_token_create(*, actor, user, name: str = "", expires_days: int | None = None,
                     source: str = "") -> tuple[ApiToken, str]:
    """Issue a key for ``user``; the key is returned once and only its hash is stored."""
    if actor is not None and actor.pk != user.pk:
        # A key acts as its user: issuing one for someone else is acting as them (K5). Operators
        # issue pipeline keys with the `create_api_token` command (recorded with no actor).
        raise Denied(Reason("four_eyes_control", "Nobody issues API keys for another person; they issue their own."))
    days = settings.COUNTERSIGN_API_TOKEN_DEFAULT_DAYS if expires_days is None else expires_days
    if days <= 0:
        raise ValidationError({"expires_days": ["A key must live at least one day."]})
    key = "cs_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[:10],
        key_hash=hashlib.sha256(key.encode()).hexdigest(),
        expires_at=timezone.now() + timedelta(days=days),
    )
    audit.record(
        "api_token.created", actor=actor, target=token,
        data={"user": user.username, "expires_at": token.expires_at, "source": source},
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, actor, token: ApiToken) -> ApiToken:
    token = ApiToken.objects.select_for_update(of=("self",)).select_related("user").get(pk=token.pk)
    if actor.pk != token.user_id and not actor.is_superuser:
        raise Denied(Reason("missing_duty", "Only the key's owner or an administrator may revoke it."))
    if token.revoked_at is not None:
        raise InvalidState("This key is already revoked.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record("api_token.revoked", actor=actor, target=token, data={"user": token.user.username})
    return token


def api_token_touch(token: ApiToken, *, at: datetime | None = None) -> None:
    """Record last use, at most once a minute per key, so reads do not become writes."""
    at = at or timezone.now()
    if token.last_used_at is None or at - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=at)
        token.last_used_at = at


def api_tokens_revoke_for_leaver(*, user, actor, reason: str, at: datetime) -> list[ApiToken]:
    """A leaver's keys all end at once (identity.services.leavers); one event per key."""
    tokens = list(ApiToken.objects.select_for_update().filter(user_id=user.pk, revoked_at__isnull=True).order_by("pk"))
    for token in tokens:
        token.revoked_at = at
        token.save(update_fields=["revoked_at"])
        audit.record("api_token.revoked", actor=actor, target=token, at=at,
                     data={"user": user.username, "prefix": token.prefix, "reason": reason, "leaver": True,
                           "was_expired": token.expires_at is not None and token.expires_at <= at})
    return tokens
