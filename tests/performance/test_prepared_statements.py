"""On PostgreSQL the hot statements are planned once per connection (issue 21, docs/performance.md):
server-side parameters and psycopg's prepared statements, on by default, off by setting."""
import pytest
from django.db import connection
from django.utils import timezone

from config import settings as project_settings
from releases import reads
from releases.models import ChangeRequest


def _prepared() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_decisions_locked_read_is_prepared_after_the_threshold(demo):
    threshold = connection.settings_dict["OPTIONS"]["prepare_threshold"]
    pk = ChangeRequest.objects.order_by("pk").values_list("pk", flat=True).first()
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # psycopg forgets its own prepared statements with it
    assert not any("FOR UPDATE OF cr" in statement for statement in _prepared())

    for _ in range(threshold + 1):
        assert reads.change(pk, actor=demo.rev, at=timezone.now(), lock=True, with_team=True, decision=True) is not None

    assert any("FOR UPDATE OF cr" in statement and "$1" in statement for statement in _prepared())


def test_prepared_statements_are_on_unless_turned_off(monkeypatch):
    monkeypatch.delenv("DATABASE_PREPARED_STATEMENTS", raising=False)
    monkeypatch.delenv("DATABASE_PREPARE_THRESHOLD", raising=False)
    assert project_settings.prepared_statements() == {"server_side_binding": True, "prepare_threshold": 5}
    monkeypatch.setenv("DATABASE_PREPARE_THRESHOLD", "2")
    assert project_settings.prepared_statements()["prepare_threshold"] == 2
    monkeypatch.setenv("DATABASE_PREPARED_STATEMENTS", "0")
    assert project_settings.prepared_statements() == {}
