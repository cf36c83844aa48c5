"""Per-connection setup for the append-only triggers.

The triggers refuse UPDATE and DELETE outright; emptying the table (TRUNCATE on PostgreSQL,
DELETE on SQLite) is refused too unless ``COUNTERSIGN_AUDIT_PURGE_ALLOWED`` is on, which only the
test suite turns on so the runner can reset tables between transactional tests.

SQLite has no session settings, so its trigger calls ``countersign_audit_purge_allowed()``, a
function registered here on each connection; a client that did not register it (a plain sqlite3
shell) gets an error and deletes nothing. On PostgreSQL the session variable
``countersign.audit_purge`` is set on connect when the setting is on.
"""
from django.conf import settings
from django.db.backends.signals import connection_created


def _purge_allowed() -> int:
    return 1 if settings.COUNTERSIGN_AUDIT_PURGE_ALLOWED else 0


def _on_connect(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_function("countersign_audit_purge_allowed", 0, _purge_allowed)
    elif connection.vendor == "postgresql" and settings.COUNTERSIGN_AUDIT_PURGE_ALLOWED:
        with connection.connection.cursor() as cursor:
            cursor.execute("SET countersign.audit_purge = 'on'")


def connect() -> None:
    connection_created.connect(_on_connect, dispatch_uid="countersign_audit_db")
