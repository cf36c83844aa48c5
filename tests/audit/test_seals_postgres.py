"""On PostgreSQL (issue 5 acceptance): the triggers refuse raw UPDATE and DELETE on seals (events:
see test_append_only.py), and ``audit_verify`` catches what a database owner who switches the
triggers off can still do: rewrite an event with every hash recomputed, or delete a seal.

``ALTER TABLE ... DISABLE TRIGGER USER`` is transactional: it is undone with the test's
transaction, and each test checks the triggers are enabled again afterwards."""
from contextlib import contextmanager
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction

from audit.chain import verify
from audit.models import AuditSeal
from tests.audit.rawsql import rolled_back, sql
from tests.audit.sealtools import rewrite_event, sealed, signing_key  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def enabled_triggers(table: str) -> set[str]:
    rows = sql(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgenabled <> 'D'",
        [table],
    )
    return {name for (name,) in rows}


@contextmanager
def triggers_disabled(*tables):
    """Switch the user triggers off as a DBA would, inside a savepoint that is always rolled back."""
    try:
        with rolled_back():
            sql("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses tables with deferred checks pending
            for table in tables:
                sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            yield
    finally:
        for table in tables:
            assert enabled_triggers(table), f"triggers on {table} still disabled"


def audit_verify() -> str:
    out = StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE audit_auditseal SET head_hash = repeat('0', 64) WHERE number = 1", r"\(UPDATE refused\)"),
        ("DELETE FROM audit_auditseal WHERE number = 3", r"\(DELETE refused\)"),
        ("TRUNCATE audit_auditseal", r"\(TRUNCATE refused\)"),
    ],
)
def test_raw_sql_on_seals_is_refused_with_a_privilege_error(sealed, statement, refusal):
    with pytest.raises(DatabaseError, match=f"audit seals are append-only {refusal}") as refused, transaction.atomic():
        sql("SET LOCAL countersign.audit_purge = 'off'")
        sql(statement)
    assert isinstance(refused.value.__cause__, psycopg.errors.InsufficientPrivilege)
    assert [s.head_hash for s in AuditSeal.objects.order_by("number")] == [s.head_hash for s in sealed]


def test_raw_update_and_delete_on_events_are_refused(sealed):
    """Also covered by test_append_only.py; here next to the seals, as the acceptance names both."""
    for statement, refusal in [
        ("UPDATE audit_auditevent SET action = 'x' WHERE sequence = 2", "UPDATE refused"),
        ("DELETE FROM audit_auditevent WHERE sequence = 2", "DELETE refused"),
    ]:
        with pytest.raises(DatabaseError, match=f"audit events are append-only \\({refusal}\\)"), transaction.atomic():
            sql(statement)
    assert verify() == (10, None)


def test_audit_verify_detects_a_modified_event_with_recomputed_hashes(sealed):
    with triggers_disabled("audit_auditevent"):
        rewrite_event(5, {"n": 555})
        assert verify() == (10, None)  # the chain alone is fooled

        with pytest.raises(CommandError) as broken:
            audit_verify()
        assert str(broken.value) == (
            "Audit seals broken at seal 2: head_hash does not match the hash of event #6 "
            "(10 events and 1 seals verified before it)."
        )
    assert "Audit seals intact: 3 seals verified." in audit_verify()


@pytest.mark.parametrize(("number", "problem"), [(2, "missing; next present is seal 3"),
                                                 (3, "missing; event #10 announced it")])
def test_audit_verify_detects_a_deleted_seal(sealed, number, problem):
    """call_command, not the command line: ``run_from_argv`` closes the connection, and with it the
    test's transaction. The CommandError's return code is the exit status the command line gives."""
    with triggers_disabled("audit_auditseal"):
        sql("DELETE FROM audit_auditseal WHERE number = %s", [number])

        with pytest.raises(CommandError, match=f"^Audit seals broken at seal {number}: {problem} ") as broken:
            audit_verify()
        assert broken.value.returncode == 1
    assert AuditSeal.objects.count() == 3
