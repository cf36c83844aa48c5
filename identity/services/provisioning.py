"""Accounts as the identity provider sends them (SCIM Users). The provider owns name, e-mail and
whether the person is active; Countersign owns what they may do (grants, through the grant service).

* A new user is an ordinary account: no staff or superuser bit, no usable password (they sign in
  through the provider), recorded as ``account.provisioned``.
* ``active`` false (Entra's ``PATCH active=false``, Okta's ``PUT``/``PATCH``, or ``DELETE``) is a
  leaver: ``identity.services.leavers.person_deactivate``.
* ``active`` true on an account provisioned disabled and never active is its first activation.
* ``active`` true on an account that was deactivated is a reactivation, which weakens the account control (K5):
  the provider cannot do it alone. The account stays disabled and an alert asks an administrator
  to reactivate it in the admin, where a second person approves.
"""
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from audit.alerts import raise_alert
from identity.models import Person
from identity.services.leavers import person_deactivate

User = get_user_model()


@dataclass
class Account:
    """What the provider says about one person, in Countersign's terms."""

    username: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    active: bool | None = None  # None: not said
    external_id: str = ""
    display_name: str = ""
    email_type: str = ""
    manager_id: str | None = None  # the manager's SCIM id (a user pk); "" clears it


def _clean(account: Account, *, exclude_pk=None) -> None:
    errors = {}
    username = (account.username or "").strip()
    if not username:
        errors["userName"] = ["userName is required."]
    else:
        try:
            User.username_validator(username)
        except ValidationError as invalid:
            errors["userName"] = invalid.messages
        if len(username) > User._meta.get_field("username").max_length:
            errors["userName"] = ["userName is longer than 150 characters."]
    if errors:
        raise ValidationError(errors)


def username_taken(username: str, *, exclude_pk=None) -> bool:
    return User.objects.filter(username__iexact=username.strip()).exclude(pk=exclude_pk).exists()


def _manager(manager_id):
    if not manager_id:
        return None
    return User.objects.filter(pk=int(manager_id)).first() if str(manager_id).isdigit() else None


@transaction.atomic
def account_provision(*, actor, account: Account, at: datetime | None = None):
    """Create the account the provider pushed (SCIM POST /Users)."""
    at = at or timezone.now()
    _clean(account)
    user = User(username=account.username.strip(), email=User.objects.normalize_email(account.email),
                first_name=account.first_name[:150], last_name=account.last_name[:150],
                is_active=account.active is not False)
    user.set_unusable_password()
    user._countersign_control_change = True  # recorded below
    user.save()
    person = Person.objects.create(user=user, external_id=account.external_id, manager=_manager(account.manager_id),
                                   display_name=account.display_name[:255], email_type=account.email_type[:32],
                                   provisioned=True, created_at=at, updated_at=at)
    audit.record("account.provisioned", actor=actor, target=user, at=at,
                 data={"user": user.username, "email": user.email, "external_id": person.external_id,
                       "active": user.is_active, "manager": person.manager.username if person.manager else None,
                       "source": "scim"})
    return user


def person_of(user) -> Person:
    person, _ = Person.objects.get_or_create(user=user)
    return person


@transaction.atomic
def account_update(*, actor, user, account: Account, at: datetime | None = None):
    """Apply what the provider now says (SCIM PUT, or PATCH once applied to the current resource)."""
    at = at or timezone.now()
    _clean(account)
    user = User.objects.select_for_update().get(pk=user.pk)
    person = Person.objects.select_for_update().filter(user=user).first() or person_of(user)
    # Provisioned disabled and never deactivated: its first activation, not a reactivation.
    never_active = person.provisioned and person.deactivated_at is None
    before = {"username": user.username, "email": user.email, "first_name": user.first_name,
              "last_name": user.last_name, "external_id": person.external_id, "display_name": person.display_name,
              "email_type": person.email_type, "manager": person.manager.username if person.manager else None}
    user.username = account.username.strip()
    user.email = User.objects.normalize_email(account.email)
    user.first_name, user.last_name = account.first_name[:150], account.last_name[:150]
    person.external_id = account.external_id
    person.display_name, person.email_type = account.display_name[:255], account.email_type[:32]
    if account.manager_id is not None:
        person.manager = _manager(account.manager_id)
    after = {"username": user.username, "email": user.email, "first_name": user.first_name,
             "last_name": user.last_name, "external_id": person.external_id, "display_name": person.display_name,
             "email_type": person.email_type, "manager": person.manager.username if person.manager else None}
    changed = sorted(k for k in after if before[k] != after[k])
    if changed:
        user._countersign_control_change = True  # recorded below
        user.save(update_fields=["username", "email", "first_name", "last_name"])
        person.provisioned, person.updated_at = True, at
        person.save()
        audit.record("account.updated_by_provider", actor=actor, target=user, at=at,
                     data={"user": user.username, "changed": changed,
                           "before": {k: before[k] for k in changed}, "after": {k: after[k] for k in changed}})
    if account.active is False and user.is_active:
        person_deactivate(user=user, actor=actor, source="scim", at=at)
    elif account.active is True and not user.is_active and never_active:
        user.is_active = True
        user._countersign_control_change = True  # recorded below
        user.save(update_fields=["is_active"])
        audit.record("account.activated_by_provider", actor=actor, target=user, at=at,
                     data={"user": user.username, "first_activation": True})
    elif account.active is True and not user.is_active:
        raise_alert("scim_reactivation_refused", severity="high", actor=user, at=at,
                    subject=f"The identity provider reactivated {user.username}; reactivate it in the admin (four eyes)",
                    details={"user": user.username, "external_id": person.external_id},
                    dedupe_key=f"scim_reactivation:{user.pk}")
    user.refresh_from_db()
    return user


@transaction.atomic
def account_delete(*, actor, user, at: datetime | None = None) -> None:
    """SCIM DELETE (Okta may send it; Entra never does): accounts are never deleted (K5), so it is
    a leaver whose resource is gone from SCIM (404 from now on)."""
    at = at or timezone.now()
    person = person_of(user)
    person_deactivate(user=user, actor=actor, source="scim", at=at)
    Person.objects.filter(pk=person.pk).update(scim_deleted=True, updated_at=at)
    audit.record("account.deprovisioned", actor=actor, target=user, at=at, data={"user": user.username})
