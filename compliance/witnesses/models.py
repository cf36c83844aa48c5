"""Witnesses (docs/architecture.md "Witnesses"): outside parties that pull the log's checkpoints
and countersign them (C2SP tlog-cosignature, ``audit.cosignature``), and the cosignatures they sent.

A ``Witness`` is a control (``compliance.witness``, ``compliance.witnesses.controls``): whose
cosignatures count is security's decision, changed only through ``control_change``. A
``Cosignature`` is written only by ``compliance.witnesses.services.cosign`` once its signature
verified against its witness's key, and never changed; it names the seal by number (no foreign key
into the audit tables, which only the audit app writes)."""
from django.db import models

from audit.cosignature import CosignatureError, parse_key


class Witness(models.Model):
    name = models.CharField(
        max_length=200, unique=True,
        help_text="The witness's key name, as on its cosignature lines (a schema-less URL, e.g. witness.example.org/w1).",
    )
    public_key = models.CharField(
        max_length=300,
        help_text="Its Ed25519 cosigning key: a C2SP vkey (name+keyid+base64) or the base64 of the raw 32 bytes.",
    )
    is_active = models.BooleanField(default=True, help_text="Only active witnesses' cosignatures are accepted.")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "witnesses"

    def __str__(self):
        return self.name

    def key(self):
        """The Ed25519 public key; ``CosignatureError`` when the stored text is not one."""
        return parse_key(self.public_key, self.name)[1]

    def key_is_valid(self) -> bool:
        try:
            self.key()
        except CosignatureError:
            return False
        return True


class Cosignature(models.Model):
    witness = models.ForeignKey(Witness, on_delete=models.PROTECT, related_name="cosignatures")
    seal_number = models.BigIntegerField(help_text="The seal whose checkpoint was cosigned.")
    tree_size = models.BigIntegerField()
    timestamp = models.BigIntegerField(help_text="When the witness signed (POSIX seconds, its own clock).")
    line = models.CharField(max_length=400, help_text="The cosignature line, as the witness sent it.")
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-seal_number", "witness__name"]
        constraints = [models.UniqueConstraint(fields=["witness", "seal_number"], name="one_cosignature_per_seal")]

    def __str__(self):
        return f"{self.witness.name} on seal {self.seal_number}"
