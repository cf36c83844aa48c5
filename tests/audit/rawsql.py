"""Raw SQL for the audit tests: it plays the part of someone going around the ORM."""
from contextlib import contextmanager

from django.db import connection, transaction

# For transactional tests: Django empties only these apps' tables afterwards, so rows that other
# apps' data migrations seeded (roles, conflict rules) survive for the transactional tests after us.
AUDIT_ONLY = ["audit"]

# Trigger names as created by audit/migrations/0002_append_only_triggers.py.
TRIGGERS = {
    "sqlite": ["audit_event_no_update", "audit_event_no_delete"],
    "postgresql": ["audit_event_append_only", "audit_event_no_truncate"],
}


def sql(statement: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchall() if cursor.description else []


def installed_triggers() -> set[str]:
    if connection.vendor == "sqlite":
        rows = sql("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_auditevent'")
    else:
        rows = sql("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_auditevent'::regclass AND NOT tgisinternal")
    return {name for (name,) in rows}


def drop_triggers() -> None:
    for name in TRIGGERS[connection.vendor]:
        if connection.vendor == "sqlite":
            sql(f"DROP TRIGGER {name}")
        else:
            sql(f"DROP TRIGGER {name} ON audit_auditevent")


def set_event_data(sequence: int, json_text: str) -> None:
    cast = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    sql(f"UPDATE audit_auditevent SET data = {cast} WHERE sequence = %s", [json_text, sequence])



@contextmanager
def rolled_back():
    """A savepoint that is always rolled back, DDL included (transactional on SQLite and PostgreSQL)."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)
