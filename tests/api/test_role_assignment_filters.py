"""List filters of ``/api/v1/role-assignments/``: usernames and slugs, within what the caller sees."""
import pytest

from governance import services
from governance.models import RoleAssignment
from tests.api.shortcuts import ASSIGNMENTS, grant_of


def rows(client, query: str) -> list[dict]:
    response = client.get(f"{ASSIGNMENTS}?limit=1000&{query}")
    assert response.status_code == 200, response.json()
    return response.json()["results"]


def test_filter_by_user(demo, api_as):
    found = rows(api_as(demo.sec), "user=rev")
    assert {row["user"] for row in found} == {"rev"}
    assert len(found) == RoleAssignment.objects.filter(user=demo.rev).count()


def test_filter_by_team(demo, api_as):
    found = rows(api_as(demo.sec), "team=identity")
    assert found and {row["team"] for row in found} == {"identity"}
    assert len(found) == RoleAssignment.objects.filter(team=demo.identity).count()


def test_filter_by_environment_matches_the_grants_own_environment(demo, api_as):
    found = rows(api_as(demo.sec), "environment=development")
    assert found and {row["environment"] for row in found} == {"development"}
    assert len(found) == RoleAssignment.objects.filter(environment=demo.development).count()


def test_filter_by_role(demo, api_as):
    found = rows(api_as(demo.sec), "role=operations")
    assert {(row["user"], row["role"]) for row in found} == {("ops", "operations")}


def test_filter_by_status(demo, api_as):
    revoked = grant_of(demo.dev, "developer", demo.staging)
    services.role_assignment_revoke(actor=demo.mgr, assignment=revoked, reason="Rotation.")
    found = rows(api_as(demo.sec), "status=revoked")
    assert [row["id"] for row in found] == [revoked.pk]
    assert revoked.pk not in {row["id"] for row in rows(api_as(demo.sec), "status=active")}


def test_filters_combine(demo, api_as):
    found = rows(api_as(demo.sec), "user=dev&environment=production&role=developer&team=payments&status=active")
    assert [row["id"] for row in found] == [grant_of(demo.dev, "developer", demo.production).pk]


def test_filters_never_widen_what_the_caller_sees(demo, api_as):
    assert rows(api_as(demo.idev), "team=payments") == []
    assert rows(api_as(demo.dev), "user=dev2") == []


@pytest.mark.parametrize("query", ["user=nobody", "team=marketing", "environment=moon", "role=janitor"])
def test_an_unknown_name_matches_nothing(demo, api_as, query):
    assert rows(api_as(demo.sec), query) == []


@pytest.mark.parametrize("query", ["status=retired", "user=de%00v"])
def test_an_invalid_filter_value_is_a_field_error(demo, api_as, query):
    response = api_as(demo.sec).get(f"{ASSIGNMENTS}?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [query.split("=")[0]]
