from django.conf import settings
from django.db import models


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit event."""


class AuditEvent(models.Model):
    """One business event. Append-only and hash-chained (RULES.md L1, L2)."""

    sequence = models.BigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    environment = models.CharField(max_length=64, blank=True, db_index=True)
    team = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        ordering = ["-sequence"]
        indexes = [
            models.Index(fields=["actor", "created_at"], name="audit_actor_time"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]
        permissions = [
            ("duty_view_audit", "Duty: view the audit trail"),
            ("duty_export_evidence", "Duty: export evidence bundles"),
        ]

    def __str__(self):
        return f"#{self.sequence} {self.action} by {self.actor_username or 'system'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events are append-only.")


class ChainHead(models.Model):
    """The single row that serialises appends: a writer locks it, reads the last sequence and
    hash, inserts the next event and moves the head, all in the caller's transaction."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    sequence = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self):
        return f"chain head #{self.sequence}"
