"""SIEM sinks (docs/siem.md): where the audit trail is streamed, and how far each one has got.

A ``SiemSink`` is a control (``compliance.siemsink``, ``compliance.siem.controls``): changed only
through ``control_change``. Its delivery state lives in ``SiemCursor``, one row per sink, written
only by the delivery task, so a control change never moves a cursor and a delivery never touches
the control row."""
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

MAX_BATCH = 1000


class SiemSink(models.Model):
    class Transport(models.TextChoices):
        HEC = "https_hec", "HTTPS: Splunk HTTP Event Collector"
        JSON = "https_json", "HTTPS: generic JSON (one array per batch)"
        SYSLOG_TCP = "syslog_tcp", "Syslog (RFC 5424) over TCP"
        SYSLOG_TLS = "syslog_tls", "Syslog (RFC 5424) over TLS"

    class Format(models.TextChoices):
        OCSF = "ocsf", "OCSF 1.5.0"
        COUNTERSIGN = "countersign", "Countersign JSON (the audit-events API shape)"

    name = models.CharField(max_length=100, unique=True)
    transport = models.CharField(max_length=12, choices=Transport.choices)
    destination = models.CharField(
        max_length=500,
        help_text="HTTPS: the collector's URL (https://splunk.example.com:8088/services/collector/event). "
        "Syslog: host:port.",
    )
    format = models.CharField(max_length=12, choices=Format.choices, default=Format.OCSF)
    token = models.CharField(
        max_length=200, blank=True,
        help_text="HEC token (sent as 'Authorization: Splunk <token>'); generic JSON: sent as a Bearer token.",
    )
    secret = models.CharField(
        max_length=200, blank=True,
        help_text="HMAC-SHA256 key that signs every batch (X-Countersign-Signature); empty: Ed25519 only.",
    )
    ca_certificate = models.TextField(
        blank=True, help_text="PEM certificates the receiver's TLS certificate must chain to; empty: the system's.",
    )
    actions = models.CharField(
        max_length=1000, blank=True,
        help_text="Comma-separated audit actions or patterns to stream (account.*, role.granted); empty for all.",
    )
    batch_size = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1), MaxValueValidator(MAX_BATCH)],
        help_text=f"Events per batch (1–{MAX_BATCH}).",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "SIEM sink"

    def __str__(self):
        return f"{self.name} ({self.transport})"

    @property
    def is_http(self) -> bool:
        return self.transport in (self.Transport.HEC, self.Transport.JSON)

    def patterns(self) -> list[str]:
        return [p.strip() for p in self.actions.split(",") if p.strip()]


class SiemCursor(models.Model):
    """How far a sink has got: every event up to ``acknowledged_sequence`` was acknowledged by the
    receiver (or skipped by the sink's ``actions``). Locked by the batch that sends from it."""

    sink = models.OneToOneField(SiemSink, primary_key=True, on_delete=models.CASCADE, related_name="cursor")
    acknowledged_sequence = models.BigIntegerField(default=0)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="Failed attempts since the last acknowledged one.")
    last_error = models.TextField(blank=True)
    events_sent = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"{self.sink.name} at #{self.acknowledged_sequence}"
