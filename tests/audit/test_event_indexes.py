"""The audit trail keeps the indexes its readers use and no more (audit/migrations/0012): every
append maintains each one, and a random-keyed one at scale costs each append a page (issue 21)."""
from collections import Counter

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.audit.rawsql import TRIGGERS, installed_triggers


def _indexed_columns() -> Counter:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "audit_auditevent")
    return Counter(tuple(c["columns"]) for c in constraints.values() if c["index"] or c["unique"])


@pytest.mark.django_db
def test_each_indexed_column_set_has_one_index():
    indexed = _indexed_columns()
    assert {columns: n for columns, n in indexed.items() if n > 1} == {}  # no LIKE twin on PostgreSQL
    assert ("actor_id",) not in indexed  # audit_actor_time starts with it
    assert {("hash",), ("sequence",), ("actor_id", "created_at"), ("target_type", "target_id"), ("action",),
            ("environment",), ("created_at",)} <= set(indexed)


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])


@pytest.mark.django_db(transaction=True)
def test_the_append_only_triggers_survive_the_migration_both_ways(vendor):
    """SQLite alters a column by copying the table, which drops its triggers."""
    _migrate(("audit", "0011_timestamps"))
    try:
        assert installed_triggers() == set(TRIGGERS[vendor])
    finally:
        _migrate(("audit", "0012_fewer_event_indexes"))
    assert installed_triggers() == set(TRIGGERS[vendor])
    assert ("actor_id",) not in _indexed_columns()
