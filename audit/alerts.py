"""Raising security alerts (RULES.md E2). Detectors live next to the data they read (releases,
governance); they all raise through here, so every alert is deduplicated, audited and notified."""
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from audit.chain import json_safe
from audit.models import Alert
from audit.notifications import notify


def raise_alert(
    kind: str,
    *,
    subject: str,
    severity: str = Alert.Severity.MEDIUM,
    details: dict | None = None,
    actor=None,
    environment: str = "",
    team: str = "",
    dedupe_key: str = "",
    at: datetime | None = None,
) -> tuple[Alert, bool]:
    """Open an alert (or return the open one with the same ``dedupe_key``). Returns (alert, created)."""
    at = at or timezone.now()
    details = json_safe(details)
    if dedupe_key:
        existing = Alert.objects.filter(dedupe_key=dedupe_key, status=Alert.Status.OPEN).first()
        if existing is not None:
            return existing, False
    fields = dict(kind=kind, severity=severity, subject=subject[:255], details=details, actor=actor,
                  environment=environment, team=team, dedupe_key=dedupe_key, created_at=at)
    if not dedupe_key:
        alert = Alert.objects.create(**fields)  # nothing unique to collide on: no savepoint needed
    else:
        try:
            with transaction.atomic():
                alert = Alert.objects.create(**fields)
        except IntegrityError:  # a concurrent detector opened it first
            return Alert.objects.get(dedupe_key=dedupe_key, status=Alert.Status.OPEN), False
    audit.record(
        "alert.raised", actor=None, target=alert, environment=environment, team=team,
        data={"kind": kind, "severity": severity, "subject": alert.subject, "details": alert.details,
              "subject_user": getattr(actor, "username", None)},
        at=at,
    )
    notify("alert", subject=f"[{severity}] {alert.subject}", body=f"{kind}: {alert.subject}", team=team,
           data={"alert": alert.pk, "kind": kind, "severity": severity})
    return alert, True
