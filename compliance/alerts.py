"""Writes to the audit app that people make (the recording core is audit.chain)."""
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from audit.models import Alert


@transaction.atomic
def alert_resolve(*, actor, alert: Alert, resolution: str, at: datetime | None = None) -> Alert:
    """Close an alert with what was found; needs security_approve (RULES.md E2)."""
    # The refusal vocabulary and duty checks every client renders; imported here, not at module
    # level, so the recording core (audit.chain) keeps importing no other app.
    from governance.duties import SECURITY_APPROVE
    from core.errors import Denied, InvalidState, Reason
    from governance.selectors import has_duty

    at = at or timezone.now()
    if not has_duty(actor, SECURITY_APPROVE, at=at):
        raise Denied(Reason("missing_duty", "Resolving alerts needs security_approve."))
    if not (resolution or "").strip():
        raise ValidationError({"resolution": ["Say what was found and done."]})
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.status != Alert.Status.OPEN:
        raise InvalidState("This alert is already resolved.")
    if alert.actor_id is not None and alert.actor_id == actor.pk:
        raise Denied(Reason("own_alert", "Nobody resolves an alert about their own action (K6); ask another security officer."))
    alert.status = Alert.Status.RESOLVED
    alert.resolution = resolution.strip()
    alert.resolved_by = actor
    alert.resolved_at = at
    alert.save(update_fields=["status", "resolution", "resolved_by", "resolved_at"])
    audit.record("alert.resolved", actor=actor, target=alert, environment=alert.environment, team=alert.team,
                 data={"kind": alert.kind, "resolution": alert.resolution}, at=at)
    return alert
