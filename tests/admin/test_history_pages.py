"""An admin history page reads as words (issue 18): no "Deleted user (pk=None)" for a person not yet
set, no "None" for a missing reason or a change the system made, times in one format with the zone."""
import re

import pytest

from governance.models import RoleAssignment

pytestmark = pytest.mark.django_db
RAW_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?")


def history_table(response) -> str:
    body = response.content.decode()
    table = body[body.index('id="change-history"'):body.index("</table>", body.index('id="change-history"'))]
    return re.sub(r' datetime="[^"]*"', "", table)  # machine-readable times may stay ISO


def test_a_privileged_grant_approved_by_a_second_person(demo, as_user, url):
    """The auditor's privileged grant waited for sec: approved_by and approved_at went from empty to set."""
    grant = RoleAssignment.objects.get(user=demo.auditor, role__slug="compliance")
    assert grant.history.count() >= 2

    response = as_user(demo.admin).get(url("governance_roleassignment_history", grant.pk))

    assert response.status_code == 200
    table = history_table(response)
    assert "Deleted" not in table and "pk=None" not in table
    assert "None" not in table
    assert not RAW_TIMESTAMP.search(table), RAW_TIMESTAMP.search(table).group(0)
    assert "UTC" in table
    assert "Pending" in table and "Approved" in table  # the status by its label, not "pending"
    assert "sec" in table
