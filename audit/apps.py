from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        from audit import db, notifications  # noqa: F401 - notifications registers its outbox handler

        db.connect()
