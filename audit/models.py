from django.conf import settings
from django.db import models


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit event."""


class AuditEvent(models.Model):
    """One business event. Append-only and hash-chained (RULES.md L1, L2)."""

    sequence = models.BigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False, db_index=True)
    # No index of its own: ``audit_actor_time`` starts with it (and serves PROTECT's check).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        db_index=False,
    )
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    environment = models.CharField(max_length=64, blank=True)
    team = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["-sequence"]
        # The indexes its readers use, and no more: every append maintains each (issue 21).
        # Declared here rather than as ``db_index``/``unique`` on the text fields, because on
        # PostgreSQL those add a second, ``varchar_pattern_ops`` index for ``LIKE 'prefix%'``,
        # which nothing asks of these columns; the one on ``hash``, random keys, was 237 MB at
        # 2,000,000 events and cost each append a page read and a full-page write.
        indexes = [
            models.Index(fields=["actor", "created_at"], name="audit_actor_time"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
            models.Index(fields=["action"], name="audit_action"),
            models.Index(fields=["environment"], name="audit_environment"),
        ]
        constraints = [models.UniqueConstraint(fields=["hash"], name="audit_event_hash_unique")]
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
    tree_size = models.BigIntegerField(
        default=0, help_text="Leaves in the Merkle tree over the chain (audit.merkle); equals sequence."
    )
    compact_range = models.JSONField(
        default=list, blank=True,
        help_text="Hex roots of the perfect subtrees tiling the tree, largest first (audit.merkle.CompactRange).",
    )

    def __str__(self):
        return f"chain head #{self.sequence}"


class MerkleNode(models.Model):
    """A perfect subtree of the Merkle tree over the chain, written once as it completes (by
    ``audit.tree.grow`` under the chain head's lock): fewer than two rows per event, so any proof is a
    single read of O(log n) rows. The primary key is the node's in-order position,
    ``(index << (level + 1)) + (1 << level) - 1`` for the subtree of ``2**level`` leaves starting at
    leaf ``index << level`` (leaves are even positions). Derived data: ``audit.tree.rebuild`` can
    recompute every row from the events, and a row that lies yields proofs that fail against the
    signed checkpoints."""

    position = models.BigIntegerField(primary_key=True, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["position"]

    def __str__(self):
        return f"merkle node {self.position}"

    @staticmethod
    def position_of(level: int, index: int) -> int:
        return (index << (level + 1)) + (1 << level) - 1


class Alert(models.Model):
    """A security signal for humans to look at (RULES.md E2)."""

    class Severity(models.TextChoices):
        LOW = "low"
        MEDIUM = "medium"
        HIGH = "high"
        CRITICAL = "critical"

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    kind = models.CharField(max_length=48, db_index=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    subject = models.CharField(max_length=255)
    details = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    environment = models.CharField(max_length=64, blank=True)
    team = models.CharField(max_length=64, blank=True)
    dedupe_key = models.CharField(
        max_length=200, blank=True, help_text="Signals with the same key raise one open alert, not many."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(db_index=True)
    resolution = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=models.Q(status="open") & ~models.Q(dedupe_key=""),
                name="alert_one_open_per_key",
            )
        ]

    def __str__(self):
        return f"[{self.severity}] {self.kind}: {self.subject}"


class OutboxMessage(models.Model):
    """A side effect written in the same transaction as the change that caused it, and handed to
    Celery after commit (and by a periodic sweep), so a broker outage never fails the action and
    never loses its follow-up."""

    topic = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_index=True)
    available_at = models.DateTimeField(db_index=True, help_text="Not handed over before this time (retry backoff).")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    failed_at = models.DateTimeField(null=True, blank=True, help_text="Gave up after the last retry.")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["delivered_at", "failed_at", "available_at"], name="outbox_due")]

    def __str__(self):
        return f"outbox #{self.pk} {self.topic}"


class NotificationChannel(models.Model):
    """Where notifications go (RULES.md E3): email addresses, a Slack-compatible incoming webhook,
    or a generic JSON webhook signed with HMAC-SHA256. Empty team means every team."""

    class Kind(models.TextChoices):
        EMAIL = "email"
        SLACK = "slack"
        WEBHOOK = "webhook"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    team = models.CharField(max_length=64, blank=True, help_text="Team slug; empty for every team.")
    target = models.CharField(max_length=500, help_text="Comma-separated addresses, or the webhook URL.")
    secret = models.CharField(max_length=200, blank=True, help_text="HMAC-SHA256 key for generic webhooks.")
    topics = models.CharField(
        max_length=500, blank=True, help_text="Comma-separated notification kinds (e.g. alert, escalation); empty for all."
    )
    events = models.CharField(
        max_length=1000, blank=True,
        help_text="Generic webhooks: comma-separated domain events to push (e.g. change_request.approved, "
        "deployment.*, *; docs/webhooks.md); empty for none.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.kind})"

    def wants(self, kind: str, team: str) -> bool:
        topics = {t.strip() for t in self.topics.split(",") if t.strip()}
        return self.is_active and (not self.team or self.team == team) and (not topics or kind in topics)


class AuditSeal(models.Model):
    """A signed statement of the chain head (RULES.md L2): "event #sequence has hash head_hash",
    signed with the server's Ed25519 key. Each seal also covers the previous seal's signature, so
    seals form their own chain (like CloudTrail's digest files): rewriting events and recomputing
    every hash no longer matches a sealed head, and removing a seal breaks the next one."""

    number = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False, db_index=True)
    sequence = models.BigIntegerField(editable=False, help_text="The last audit event this seal covers.")
    head_hash = models.CharField(max_length=64, editable=False)
    prev_signature = models.CharField(max_length=128, blank=True, editable=False)
    key_fingerprint = models.CharField(max_length=64, editable=False)
    signature = models.CharField(max_length=128, editable=False)
    tree_size = models.BigIntegerField(
        null=True, blank=True, editable=False, help_text="Size of the Merkle tree checkpointed (= sequence)."
    )
    root_hash = models.CharField(max_length=64, blank=True, editable=False, help_text="Its RFC 9162 root, hex.")
    checkpoint = models.TextField(
        blank=True, editable=False, help_text="The signed checkpoint (audit/checkpoint.py); empty for older seals."
    )

    class Meta:
        ordering = ["-number"]

    def __str__(self):
        return f"seal {self.number} over event #{self.sequence}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit seals are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit seals are append-only.")


class EvidenceExport(models.Model):
    """One evidence bundle for a framework and period (RULES.md L3), built by a Celery task.

    The period is calendar days in UTC, both ends included: events at or after
    ``period_start`` 00:00 and before ``period_end`` + 1 day 00:00."""

    class Framework(models.TextChoices):
        SOX = "sox", "SOX (ITGC change management and logical access)"
        HIPAA = "hipaa", "HIPAA (audit controls, activity review, access management)"
        ISO27001 = "iso27001", "ISO/IEC 27001:2022"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    framework = models.CharField(max_length=10, choices=Framework.choices)
    period_start = models.DateField()
    period_end = models.DateField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    file = models.CharField(max_length=255, blank=True, help_text="Bundle path under EVIDENCE_ROOT.")
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    row_counts = models.JSONField(default=dict, blank=True)
    checkpoint_tree_size = models.BigIntegerField(
        null=True, blank=True, help_text="The Merkle tree size of the checkpoint the bundle was built at."
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self):
        return f"{self.get_framework_display()} {self.period_start}…{self.period_end} (#{self.pk})"


class TimestampAuthority(models.Model):
    """An RFC 3161 timestamp authority each seal's checkpoint is sent to (``audit.timestamps``): a
    control (``audit.timestampauthority``), changed only through ``control_change``. Its reply, a
    token signed by the authority, pins the checkpoint to a time nobody here can move."""

    class HashAlgorithm(models.TextChoices):
        SHA256 = "sha256", "SHA-256"
        SHA512 = "sha512", "SHA-512"

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(max_length=500, help_text="Where TimeStampReqs are POSTed (application/timestamp-query).")
    certificate = models.TextField(
        help_text="PEM certificates its tokens are checked against: the authority's CA (and its TSA certificate)."
    )
    hash_algorithm = models.CharField(max_length=10, choices=HashAlgorithm.choices, default=HashAlgorithm.SHA256)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "timestamp authority"
        verbose_name_plural = "timestamp authorities"

    def __str__(self):
        return self.name


class SealTimestamp(models.Model):
    """A timestamp authority's token over one seal's checkpoint: the DER TimeStampResp as the
    authority sent it, verified against its certificate before it was stored. Written once by
    ``audit.timestamps.stamp``; the seal link has no database constraint (seals are append-only and
    their table is purged only in tests)."""

    seal = models.ForeignKey(AuditSeal, on_delete=models.DO_NOTHING, db_constraint=False, related_name="timestamps")
    authority = models.ForeignKey(TimestampAuthority, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    authority_name = models.CharField(max_length=100)
    hash_algorithm = models.CharField(max_length=10)
    digest = models.CharField(max_length=128, help_text="Hex digest of the checkpoint's UTF-8 bytes the token covers.")
    response = models.BinaryField(help_text="The authority's DER TimeStampResp (the token inside it).")
    gen_time = models.DateTimeField(help_text="The time the authority put in the token.")
    serial = models.CharField(max_length=64, help_text="The token's serial number at the authority (decimal).")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["seal_id", "authority_name"]
        constraints = [models.UniqueConstraint(fields=["seal", "authority_name"], name="one_timestamp_per_authority")]

    def __str__(self):
        return f"{self.authority_name} timestamp of seal {self.seal_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Seal timestamps are written once.")
        super().save(*args, **kwargs)
