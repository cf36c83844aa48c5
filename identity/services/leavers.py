"""Leavers (issue 17, item 4): when an account is disabled, by the provider (SCIM ``active=false``)
or in the admin (the account control), everything the person held ends in the same transaction,
each through the service that owns it and each with its own audit event:

* every grant in force ends, and every pending grant request of theirs (or made by them) is
  withdrawn, through the grant service (``role_assignments_end_for_leaver``);
* every API key is revoked and every session ended, so the next request with them is refused;
* the changes they authored that have not started deploying are withdrawn, and their approvals on
  changes still pending no longer count (``change_requests_withdraw_for_leaver``);
* their undecided access-review items go to their manager (or the team's, or security);
* their manager and security are told.

``account.deactivated`` comes first and carries the moment the provider (or the administrator)
disabled the person: the SOX leavers dataset measures everything else against it.
"""
import hashlib
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

import audit
from audit.notifications import notify
from governance import duties, services as governance_services
from releases.services import change_requests_withdraw_for_leaver

from identity.models import Person

REASON = "left the organisation (account disabled)"


def _end_sessions(user, *, actor, at) -> int:
    """Delete the person's server-side sessions (database-backed session engines)."""
    if not settings.SESSION_ENGINE.startswith("django.contrib.sessions.backends.") or "db" not in settings.SESSION_ENGINE:
        return 0
    ended = 0
    for session in Session.objects.filter(expire_date__gt=at).iterator():
        if str(session.get_decoded().get("_auth_user_id")) != str(user.pk):
            continue
        # The key is a credential: the trail keeps a fingerprint of it, never the key.
        fingerprint = hashlib.sha256(session.session_key.encode()).hexdigest()[:16]
        session.delete()
        audit.record("session.ended", actor=actor, target=user, at=at,
                     data={"user": user.get_username(), "session": fingerprint, "reason": REASON})
        ended += 1
    return ended


@transaction.atomic
def person_deactivate(*, user, actor=None, source: str, at: datetime | None = None, disable: bool = True) -> dict:
    """Disable ``user`` (unless the account control already did: ``disable=False``) and end
    everything they held. ``source``: "scim", "admin". Safe to call again: what already ended is
    not ended twice, and the second call records only what it ends."""
    at = at or timezone.now()
    user = governance_services.lock_user(user)
    person = Person.objects.select_for_update().filter(user=user).first()
    was_active = user.is_active or not disable
    if disable and user.is_active:
        user.is_active = False
        user._countersign_control_change = True  # recorded below as account.deactivated
        user.save(update_fields=["is_active"])
    if was_active:
        if person is not None:
            person.deactivated_at, person.deactivated_by, person.updated_at = at, source, at
            person.save(update_fields=["deactivated_at", "deactivated_by", "updated_at"])
        audit.record("account.deactivated", actor=actor, target=user, at=at,
                     data={"user": user.get_username(), "source": source, "deactivated_at": at,
                           "external_id": person.external_id if person else ""})
    grants = governance_services.role_assignments_end_for_leaver(user=user, actor=actor, reason=REASON, at=at)
    tokens = governance_services.api_tokens_revoke_for_leaver(user=user, actor=actor, reason=REASON, at=at)
    sessions = _end_sessions(user, actor=actor, at=at)
    releases = change_requests_withdraw_for_leaver(user=user, actor=actor, reason=REASON, at=at)
    manager = person.manager if person is not None else None
    items = governance_services.access_review_items_reassign_for_leaver(leaver=user, manager=manager, actor=actor, at=at)
    summary = {"grants": len(grants), "api_tokens": len(tokens), "sessions": sessions,
               "change_requests": len(releases["change_requests"]), "approvals": len(releases["approvals"]),
               "review_items": len(items)}
    if was_active or any(summary.values()):
        recipients = [manager.email] if manager is not None and manager.email else []
        recipients += governance_services.duty_holders_emails(duties.SECURITY_APPROVE, at=at)
        notify("leaver", subject=f"{user.get_username()} left: access ended",
               body=", ".join(f"{n} {what.replace('_', ' ')}" for what, n in summary.items()) + " ended or moved.",
               recipients=recipients, data={"user": user.get_username(), **summary})
    return summary


def on_account_deactivated(sender, *, user, actor=None, source: str = "admin", at=None, **kwargs) -> None:
    """The account control disabled ``user`` (governance.signals): end the rest with it."""
    person_deactivate(user=get_user_model().objects.get(pk=user.pk), actor=actor, source=source, at=at, disable=False)
