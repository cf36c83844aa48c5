"""Accounts (RULES.md K5): what people may do to accounts beyond the control changes of
``governance.controls`` (create, rename, elevate, deactivate, reactivate).

Nobody sets another person's password: an administrator issues a one-time, expiring reset link,
sent to the account's own address and never shown to whoever issued it (nor kept in the outbox,
which administrators can read). The owner sets the password through it, and that is recorded too.

A safety net records what the doors cannot see: a change to an account's control fields saved by
anything other than the control service (Django's ``createsuperuser`` and ``changepassword``
commands, a shell) becomes an ``account.changed_outside_service`` event and a critical alert.
"""
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

import audit
from governance import duties
from core.errors import Denied, Reason
from governance.selectors import has_duty_everywhere
from core.english import possessive

WATCHED_FIELDS = ("username", "email", "is_active", "is_staff", "is_superuser")


def _masked(address: str) -> str:
    name, _, domain = address.partition("@")
    return f"{name[:1]}…@{domain}" if domain else "…"


def _may_administer(actor, *, at) -> bool:
    return actor is not None and actor.is_active and (
        actor.is_superuser or has_duty_everywhere(actor, duties.SECURITY_APPROVE, at=at))


@transaction.atomic
def password_reset_issue(*, actor, user, reason: str = "", at: datetime | None = None) -> None:
    """Send ``user`` a one-time link to set their own password (K5). ``actor`` None: the system
    (a new account's invitation)."""
    at = at or timezone.now()
    if actor is not None and actor.pk != user.pk and not _may_administer(actor, at=at):
        raise Denied(Reason("missing_duty", "Issuing reset links for other people needs an administrator."))
    if not user.email:
        raise ValidationError({"email": [f"{user.get_username()} has no e-mail address to send a reset link to."]})
    if not user.is_active:
        raise ValidationError({"is_active": [f"{possessive(user.get_username())} account is disabled; reactivate it first."]})
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    link = settings.COUNTERSIGN_BASE_URL.rstrip("/") + reverse(
        "password_reset_confirm", kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)})
    audit.record(
        "account.password_reset_issued", actor=actor, target=user,
        data={"user": user.get_username(), "sent_to": _masked(user.email), "reason": (reason or "").strip(),
              "expires_at": at + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)},
        at=at,
    )
    hours = settings.PASSWORD_RESET_TIMEOUT // 3600
    address = user.email
    transaction.on_commit(lambda: send_mail(
        "Set your Countersign password",
        f"Open this link within {hours} hours to set your password. It works once.\n\n{link}\n\n"
        "If you did not expect it, tell your security team.",
        settings.DEFAULT_FROM_EMAIL, [address],
    ))


@transaction.atomic
def password_set_by_owner(*, user, password: str, via: str, at: datetime | None = None) -> None:
    """The owner sets their own password (through a reset link, or knowing the current one)."""
    at = at or timezone.now()
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    user.set_password(password)
    user._countersign_control_change = True
    user.save(update_fields=["password"])
    audit.record("account.password_set", actor=user, target=user, data={"user": user.get_username(), "via": via},
                 at=at)


@transaction.atomic
def lockout_reset(*, actor, user, at: datetime | None = None) -> int:
    """Lift a brute-force lockout early (an administrator or security for all environments)."""
    from axes.models import AccessAttempt

    at = at or timezone.now()
    if not _may_administer(actor, at=at):
        raise Denied(Reason("missing_duty", "Lifting a lockout needs an administrator or security for all environments."))
    attempts = AccessAttempt.objects.filter(username=user.get_username())
    failures = sum(attempts.values_list("failures_since_start", flat=True))
    cleared = attempts.count()
    attempts.delete()
    audit.record("account.lockout_reset", actor=actor, target=user,
                 data={"user": user.get_username(), "before": {"failures": failures}, "after": {"failures": 0},
                       "attempt_records": cleared}, at=at)
    return cleared


# --- The safety net ---------------------------------------------------------------------------------


def _watched(user) -> dict:
    return {name: getattr(user, name) for name in WATCHED_FIELDS}


def remember_before_save(sender, instance, raw=False, update_fields=None, **kwargs):
    """pre_save: note what the row held, unless the save is the control service's own or touches
    no watched field (a login's ``last_login``)."""
    instance._countersign_outside = None
    if raw or getattr(instance, "_countersign_control_change", False):
        return
    password_changed = getattr(instance, "_password", None) is not None  # set_password, not a hash upgrade
    if update_fields is not None and not (set(update_fields) & set(WATCHED_FIELDS)) and not password_changed:
        return
    if instance.pk is None:
        if instance.is_staff or instance.is_superuser:
            instance._countersign_outside = ({}, password_changed)
        return
    stored = sender.objects.filter(pk=instance.pk).values(*WATCHED_FIELDS).first()
    if stored is None:
        return
    if stored != _watched(instance) or password_changed:
        instance._countersign_outside = (stored, password_changed)


def record_outside_save(sender, instance, created=False, raw=False, **kwargs):
    """post_save: record and alert on an account change the service did not make."""
    outside = getattr(instance, "_countersign_outside", None)
    instance._countersign_control_change = False
    if outside is None:
        return
    instance._countersign_outside = None
    stored, password_changed = outside
    after = _watched(instance)
    changed = sorted(name for name in WATCHED_FIELDS if stored.get(name) != after[name]) if stored else sorted(after)
    if password_changed:
        changed.append("password")
    from audit.alerts import raise_alert

    audit.record("account.changed_outside_service", actor=None, target=instance,
                 data={"user": instance.get_username(), "created": created, "before": stored or None, "after": after,
                       "changed": changed})
    raise_alert("control_changed_outside_service", severity="critical",
                subject=f"Account {instance.get_username()} changed outside Countersign's services ({', '.join(changed)})",
                details={"user": instance.get_username(), "changed": changed, "created": created})
