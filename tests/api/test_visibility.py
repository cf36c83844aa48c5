"""V2: a grant is visible to its grantee, to managers of its team, and to security and audit
viewers. Everyone else gets 404, whatever they ask to do with it."""
import pytest

from governance.models import RoleAssignment
from tests.api.shortcuts import ASSIGNMENTS, assignment_url, grant_of


def listed_ids(client, query: str = "") -> set[int]:
    response = client.get(f"{ASSIGNMENTS}?limit=1000{query}")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(body["results"])
    return {row["id"] for row in body["results"]}


def ids(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def test_a_developer_sees_only_their_own_grants(demo, api_as):
    seen = listed_ids(api_as(demo.dev))
    assert seen and seen == ids(RoleAssignment.objects.filter(user=demo.dev))


def test_a_manager_sees_every_grant_of_their_team_and_no_other(demo, api_as):
    seen = listed_ids(api_as(demo.mgr))
    assert seen == ids(RoleAssignment.objects.filter(team=demo.payments))
    assert not seen & ids(RoleAssignment.objects.filter(team=demo.identity))


@pytest.mark.parametrize("persona", ["sec", "auditor", "admin"])
def test_security_audit_and_superusers_see_all(demo, api_as, persona):
    assert listed_ids(api_as(getattr(demo, persona))) == ids(RoleAssignment.objects.all())


def test_a_member_of_another_team_gets_404_for_payments_grants(demo, api_as, nothing_written):
    client = api_as(demo.idev)
    hidden = grant_of(demo.dev, "developer", demo.production)
    assert hidden.pk not in listed_ids(client)
    with nothing_written():
        for response in [
            client.get(assignment_url(hidden)),
            client.post(assignment_url(hidden, "approve")),
            client.post(assignment_url(hidden, "reject"), {"reason": "x"}, format="json"),
            client.post(assignment_url(hidden, "revoke"), {"reason": "x"}, format="json"),
            client.post(assignment_url(hidden, "revoke"), {}, format="json"),
        ]:
            assert response.status_code == 404
            assert set(response.json()) == {"detail"}


def test_a_hidden_grant_looks_exactly_like_a_missing_one(demo, api_as):
    client = api_as(demo.idev)
    hidden = client.get(assignment_url(grant_of(demo.dev, "developer", demo.production)))
    missing = client.get(assignment_url(RoleAssignment.objects.order_by("-pk").first().pk + 1000))
    assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())


def test_a_revoked_grant_stops_making_its_holder_a_viewer(demo, api_as):
    from governance import services

    client = api_as(demo.mgr)
    dev_grant = grant_of(demo.dev, "developer", demo.staging)
    assert client.get(assignment_url(dev_grant)).status_code == 200
    services.role_assignment_revoke(actor=demo.sec, assignment=grant_of(demo.mgr, "manager"), reason="Left.")
    assert client.get(assignment_url(dev_grant)).status_code == 404
    assert client.get(assignment_url(grant_of(demo.dev2, "developer", demo.staging))).status_code == 404
