from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    """The auditors' and security officers' room, above governance and releases: alert resolution,
    the audit trail's admin and API, evidence exports and their offline verifier."""

    name = "compliance"
    verbose_name = "Compliance"
