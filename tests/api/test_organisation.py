"""Teams, environments and roles: read-only, named by slug, readable by any signed-in user."""
import pytest


def test_teams_are_listed_and_retrieved_by_slug(demo, api_as):
    client = api_as(demo.idev)
    listing = client.get("/api/v1/teams/").json()
    assert [team["slug"] for team in listing["results"]] == ["identity", "payments"]
    assert client.get("/api/v1/teams/payments/").json() == {
        "slug": "payments", "name": "Payments", "time_zone": "Europe/London",
    }


def test_environments_are_listed_in_promotion_order(demo, api_as):
    client = api_as(demo.dev)
    listing = client.get("/api/v1/environments/").json()
    assert [(env["slug"], env["tier"]) for env in listing["results"]] == [
        ("development", "development"), ("staging", "staging"), ("production", "production"),
    ]
    assert client.get("/api/v1/environments/production/").json()["tier"] == "production"


def test_roles_carry_their_duties(demo, api_as):
    client = api_as(demo.dev)
    roles = {role["slug"]: role for role in client.get("/api/v1/roles/").json()["results"]}
    assert set(roles) == {"compliance", "developer", "manager", "operations", "reviewer", "security"}
    assert sorted(roles["security"]["duties"]) == ["approve", "security_approve", "view_audit"]
    assert roles["security"]["is_privileged"] and roles["security"]["scope"] == "environment_or_all"
    manager = client.get("/api/v1/roles/manager/").json()
    assert sorted(manager["duties"]) == ["manage_roles", "review_access"] and manager["scope"] == "team"


@pytest.mark.parametrize("url", ["/api/v1/teams/nope/", "/api/v1/environments/nope/", "/api/v1/roles/nope/",
                                 "/api/v1/teams/pay%00ments/", "/api/v1/roles/d%C3%A9veloper/"])
def test_an_unknown_slug_is_404(demo, api_as, url):
    response = api_as(demo.dev).get(url)
    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("url", ["/api/v1/teams/", "/api/v1/teams/payments/", "/api/v1/roles/developer/"])
def test_they_are_read_only(demo, api_as, nothing_written, method, url):
    client = api_as(demo.admin)
    with nothing_written():
        response = getattr(client, method)(url, {"slug": "x", "name": "X"}, format="json")
    assert response.status_code == 405
    assert set(response.json()) == {"detail"}
