from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    """The auditors' and security officers' room, above governance and releases: alert resolution,
    the audit trail's admin and API, evidence exports and their offline verifier, the SIEM
    sinks that stream the trail out, and the witnesses that countersign its checkpoints."""

    name = "compliance"
    verbose_name = "Compliance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from compliance.siem import controls  # noqa: F401  (SIEM sinks are controls)
        from compliance.timestamps import controls as _tsa  # noqa: F401  (so are timestamp authorities)
        from compliance.witnesses import controls as witnesses  # noqa: F401  (witnesses are controls)
