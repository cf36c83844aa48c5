"""Listing grants costs the same number of queries for 10 rows as for 100 (no query per row)."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance import services
from governance.models import Role
from tests.api.shortcuts import ASSIGNMENTS
from tests.factories import UserFactory, member


def add_grants(demo, count: int, start: int) -> None:
    """``count`` grants in payments touching every related column: requester, approver, ender."""
    reviewer = Role.objects.get(slug="reviewer")
    for n in range(start, start + count):
        user = UserFactory(username=f"engineer{n}")
        member(user, demo.payments)
        privileged = n % 3 == 0
        assignment = services.role_grant(
            actor=demo.mgr, user=user, role=reviewer, team=demo.payments,
            environment=demo.production if privileged else demo.staging,
            justification="Load.", expires_at=timezone.now() + timedelta(days=30) if privileged else None,
        )
        if privileged:
            services.role_assignment_approve(actor=demo.sec, assignment=assignment)
        elif n % 3 == 1:
            services.role_assignment_revoke(actor=demo.mgr, assignment=assignment, reason="Rotation.")


def list_all(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{ASSIGNMENTS}?limit=1000")
    assert response.status_code == 200
    return len(queries), len(response.json()["results"])


@pytest.mark.parametrize("persona", ["sec", "mgr"])
def test_the_list_runs_a_constant_number_of_queries(demo, api_as, persona):
    client = api_as(getattr(demo, persona))
    client.get(ASSIGNMENTS)  # the first use of a key records it (one UPDATE); later reads do not
    add_grants(demo, 10, start=0)
    queries_for_10, rows_for_10 = list_all(client)
    add_grants(demo, 90, start=10)
    queries_for_100, rows_for_100 = list_all(client)
    assert rows_for_100 == rows_for_10 + 90
    assert queries_for_100 == queries_for_10
