"""The hot reads of people have an index path on PostgreSQL (issue 21): an ``OR`` of ``IN``
subqueries has none, so PostgreSQL read every user for each of them (132 pages at ``large``).
With sequential scans priced out (``enable_seqscan = off``), the planner still scans a table only
when no index can answer the query, whatever the table's size."""
import pytest
from django.db import connection

from integrations import attestations
from releases import selectors

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SHAPES = {
    "decision participants": (selectors._PARTICIPANTS, {"change_request_id": 1, "actor_id": 2}),
    "their SoD-exception grants": (selectors._EXCEPTION_GRANTS, {"change_request_id": 1, "actor_id": 2}),
    "attestation people": (attestations._PEOPLE, {"change_request_id": 1}),
}


@pytest.mark.parametrize("name", SHAPES)
def test_no_read_of_people_scans_the_users(name):
    shape, values = SHAPES[name]
    sql, params = shape._bound(values)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "Seq Scan on auth_user" not in plan, plan
