"""manage.py audit_verify recomputes the chain and names the first broken event (RULES.md L2).

Tampering here goes around every guard the way an attacker with database access would: drop the
append-only triggers, then change rows with raw SQL. All of it happens inside a savepoint that is
rolled back; DDL is transactional on SQLite and PostgreSQL, so the triggers come back with it.
"""
import re
from io import StringIO

import pytest
from django.core.management import CommandError, ManagementUtility, call_command
from django.db import DatabaseError

import audit
from audit.chain import compute_hash, verify
from audit.models import AuditEvent, ChainHead
from tests.audit.rawsql import TRIGGERS, drop_triggers, installed_triggers, rolled_back, set_event_data, sql

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain():
    return [audit.record("test.step", data={"n": n}) for n in range(1, 6)]


def audit_verify() -> str:
    out = StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def test_an_empty_log_is_intact():
    assert "Audit chain intact: 0 events verified." in audit_verify()


def test_an_intact_chain_passes(chain):
    assert "Audit chain intact: 5 events verified." in audit_verify()
    assert verify() == (5, None)


def test_verify_reads_in_batches(chain):
    assert verify(batch_size=2) == (5, None)


def test_changed_data_is_named_by_its_sequence(chain, vendor):
    with rolled_back():
        drop_triggers()
        set_event_data(3, '{"n": 333}')

        with pytest.raises(CommandError, match=r"event #3 \(id \d+\): content does not match its hash") as broken:
            audit_verify()
        assert "2 events verified before it" in str(broken.value)

    assert installed_triggers() == set(TRIGGERS[vendor])
    assert AuditEvent.objects.get(sequence=3).data == {"n": 3}
    assert "Audit chain intact: 5 events verified." in audit_verify()


def test_the_triggers_are_back_after_the_rollback(chain, vendor):
    """The rollback of the tampering restores the triggers: UPDATE is refused again."""
    with rolled_back():
        drop_triggers()
        assert installed_triggers() == set()

    assert installed_triggers() == set(TRIGGERS[vendor])
    with pytest.raises(DatabaseError, match="append-only"), rolled_back():
        set_event_data(1, "{}")


def test_a_rewritten_hash_breaks_the_link_to_the_next_event(chain):
    """A forger who also recomputes the tampered event's hash is caught one event later."""
    forged = AuditEvent.objects.get(sequence=2)
    forged.data = {"n": 222}
    forged_hash = compute_hash(forged, forged.prev_hash)
    with rolled_back():
        drop_triggers()
        set_event_data(2, '{"n": 222}')
        sql("UPDATE audit_auditevent SET hash = %s WHERE sequence = 2", [forged_hash])

        with pytest.raises(CommandError, match=r"event #3 \(id \d+\): prev_hash does not match"):
            audit_verify()


@pytest.mark.parametrize(
    ("column", "value"),
    [("action", "test.innocent"), ("actor_username", "someone_else"), ("ip", "10.0.0.1"), ("request_id", "forged")],
)
def test_every_recorded_column_is_covered_by_the_hash(chain, column, value):
    with rolled_back():
        drop_triggers()
        sql(f"UPDATE audit_auditevent SET {column} = %s WHERE sequence = 4", [value])

        with pytest.raises(CommandError, match=r"event #4 "):
            audit_verify()


def test_a_changed_timestamp_is_caught(chain):
    with rolled_back():
        drop_triggers()
        sql(
            "UPDATE audit_auditevent SET created_at = %s WHERE sequence = 5",
            [AuditEvent.objects.get(sequence=1).created_at],
        )

        with pytest.raises(CommandError, match=r"event #5 .*content does not match"):
            audit_verify()


def test_a_deleted_middle_event_is_reported_missing(chain):
    with rolled_back():
        drop_triggers()
        sql("DELETE FROM audit_auditevent WHERE sequence = 3")

        with pytest.raises(CommandError, match=r"event #3 .*missing; next present is #4"):
            audit_verify()

    assert AuditEvent.objects.count() == 5


def test_a_deleted_first_event_is_reported_missing(chain):
    with rolled_back():
        drop_triggers()
        sql("DELETE FROM audit_auditevent WHERE sequence = 1")

        with pytest.raises(CommandError, match=r"event #1 .*missing; next present is #2"):
            audit_verify()


def test_a_deleted_last_event_is_caught_by_the_chain_head(chain):
    with rolled_back():
        drop_triggers()
        sql("DELETE FROM audit_auditevent WHERE sequence = 5")

        with pytest.raises(CommandError, match=r"event #5 .*chain head says #5 but the log ends at #4"):
            audit_verify()


def test_a_renumbered_tail_is_caught(chain):
    """Deleting an event and shifting the later ones down breaks the hashes they were sealed with."""
    with rolled_back():
        drop_triggers()
        sql("DELETE FROM audit_auditevent WHERE sequence = 3")
        for sequence in (4, 5):
            sql("UPDATE audit_auditevent SET sequence = %s WHERE sequence = %s", [sequence - 1, sequence])
        ChainHead.objects.filter(pk=1).update(sequence=4)

        with pytest.raises(CommandError, match=r"event #3 .*prev_hash does not match"):
            audit_verify()


def test_the_failure_exits_non_zero_from_the_command_line(chain, capsys):
    """What an operator or a cron job sees: a non-zero exit status and the first break on stderr."""
    with rolled_back():
        drop_triggers()
        set_event_data(2, "{}")
        with pytest.raises(SystemExit) as exited:
            ManagementUtility(["manage.py", "audit_verify"]).execute()

    assert exited.value.code == 1
    assert "Audit chain broken at event #2 " in capsys.readouterr().err


def test_the_break_names_the_first_problem_only(chain):
    with rolled_back():
        drop_triggers()
        set_event_data(2, "{}")
        set_event_data(4, "{}")

        checked, broken = verify()

    assert checked == 1
    assert broken.sequence == 2
    assert re.fullmatch(r"event #2 \(id \d+\): content does not match its hash", str(broken))

