"""Audit events are append-only: the model refuses, and so does the database (RULES.md L2)."""
import sqlite3

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

import audit
from audit.models import AppendOnlyError, AuditEvent
from tests.audit.rawsql import AUDIT_ONLY, TRIGGERS, installed_triggers, set_event_data, sql

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain():
    return [audit.record("test.step", data={"n": n}) for n in range(1, 4)]


def refused_by_the_database():
    """The trigger's error aborts the statement; the savepoint keeps the test's transaction usable."""
    return pytest.raises(DatabaseError, match="append-only")


def test_the_triggers_are_installed(vendor):
    assert installed_triggers() == set(TRIGGERS[vendor])


def test_the_model_refuses_to_save_a_recorded_event(chain):
    event = AuditEvent.objects.get(sequence=2)
    event.action = "test.rewritten"

    with pytest.raises(AppendOnlyError):
        event.save()
    assert AuditEvent.objects.get(sequence=2).action == "test.step"


def test_the_model_refuses_to_delete_an_event(chain):
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.get(sequence=2).delete()
    assert AuditEvent.objects.count() == 3


def test_queryset_update_is_refused_by_the_database(chain):
    with refused_by_the_database(), transaction.atomic():
        AuditEvent.objects.filter(sequence=2).update(action="test.rewritten")
    assert AuditEvent.objects.get(sequence=2).action == "test.step"


def test_raw_sql_update_is_refused(chain):
    with refused_by_the_database(), transaction.atomic():
        set_event_data(2, '{"n": 999}')
    assert AuditEvent.objects.get(sequence=2).data == {"n": 2}


def test_raw_sql_update_of_the_hash_is_refused(chain):
    with refused_by_the_database(), transaction.atomic():
        sql("UPDATE audit_auditevent SET hash = %s WHERE sequence = 1", ["f" * 64])


def test_raw_sql_delete_is_refused_when_purging_is_off(chain, settings):
    settings.COUNTERSIGN_AUDIT_PURGE_ALLOWED = False

    with refused_by_the_database(), transaction.atomic():
        sql("DELETE FROM audit_auditevent WHERE sequence = 2")
    with refused_by_the_database(), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 3


def test_the_purge_flag_lets_only_sqlite_empty_the_table(chain, settings, vendor):
    """The test runner needs to empty tables between transactional tests. On SQLite that is a
    DELETE, allowed only while the setting is on; on PostgreSQL it is a TRUNCATE, so row DELETE
    stays refused whatever the setting says."""
    settings.COUNTERSIGN_AUDIT_PURGE_ALLOWED = True

    if vendor == "sqlite":
        with transaction.atomic():
            sql("DELETE FROM audit_auditevent")
            assert AuditEvent.objects.count() == 0
            transaction.set_rollback(True)
    else:
        with refused_by_the_database(), transaction.atomic():
            sql("DELETE FROM audit_auditevent")
    assert AuditEvent.objects.count() == 3


def fire_deferred_constraint_checks():
    """TRUNCATE refuses a table with deferred FK checks pending from this transaction's inserts."""
    sql("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.postgres
def test_truncate_is_refused_when_the_session_does_not_purge(chain):
    with refused_by_the_database(), transaction.atomic():
        sql("SET LOCAL countersign.audit_purge = 'off'")
        fire_deferred_constraint_checks()
        sql("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 3


@pytest.mark.postgres
def test_truncate_is_refused_when_the_flag_is_anything_but_on(chain):
    with refused_by_the_database(), transaction.atomic():
        sql("SET LOCAL countersign.audit_purge = ''")
        fire_deferred_constraint_checks()
        sql("TRUNCATE audit_auditevent CASCADE")
    assert AuditEvent.objects.count() == 3


@pytest.mark.postgres
def test_truncate_is_allowed_in_a_purging_session(chain):
    """What the test runner relies on between transactional tests (see audit/db.py)."""
    assert sql("SHOW countersign.audit_purge") == [("on",)]
    with transaction.atomic():
        fire_deferred_constraint_checks()
        sql("TRUNCATE audit_auditevent")
        assert AuditEvent.objects.count() == 0
        transaction.set_rollback(True)
    assert AuditEvent.objects.count() == 3


@pytest.mark.postgres
def test_the_postgres_refusal_is_a_privilege_error(chain):
    with pytest.raises(DatabaseError) as refused, transaction.atomic():
        sql("DELETE FROM audit_auditevent WHERE sequence = 1")
    assert isinstance(refused.value.__cause__, psycopg.errors.InsufficientPrivilege)
    assert "DELETE refused" in str(refused.value)


def outside_client():
    """A database client that did not come through Django: no purge function, no session flag."""
    if connection.vendor == "sqlite":
        return sqlite3.connect(connection.settings_dict["NAME"], uri=True, isolation_level=None)
    return psycopg.connect(**connection.get_connection_params(), autocommit=True)


OUTSIDE_REFUSALS = {
    "sqlite": {
        "UPDATE audit_auditevent SET action = 'x'": r"append-only \(UPDATE refused\)",
        "DELETE FROM audit_auditevent": "no such function: countersign_audit_purge_allowed",
    },
    "postgresql": {
        "UPDATE audit_auditevent SET action = 'x'": r"append-only \(UPDATE refused\)",
        "DELETE FROM audit_auditevent": r"append-only \(DELETE refused\)",
        "TRUNCATE audit_auditevent": r"append-only \(TRUNCATE refused\)",
    },
}


@pytest.mark.django_db(transaction=True, available_apps=AUDIT_ONLY)
def test_an_outside_client_can_neither_change_nor_remove_committed_events(vendor):
    """A psql or sqlite3 shell pointed at the database is refused like the application."""
    audit.record("test.committed")
    client = outside_client()
    try:
        for statement, refusal in OUTSIDE_REFUSALS[vendor].items():
            with pytest.raises(Exception, match=refusal):
                client.execute(statement)
    finally:
        client.close()
    assert AuditEvent.objects.get().action == "test.committed"
