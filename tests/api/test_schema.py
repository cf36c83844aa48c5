"""The OpenAPI document describes the governance endpoints and their error responses, and generates
without a warning."""
import yaml
from django.core.management import call_command

GOVERNANCE_PATHS = [
    "/api/v1/teams/", "/api/v1/teams/{slug}/", "/api/v1/environments/", "/api/v1/environments/{slug}/",
    "/api/v1/roles/", "/api/v1/roles/{slug}/", "/api/v1/role-assignments/", "/api/v1/role-assignments/{id}/",
    "/api/v1/role-assignments/{id}/approve/", "/api/v1/role-assignments/{id}/reject/",
    "/api/v1/role-assignments/{id}/revoke/",
]


def test_the_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert set(GOVERNANCE_PATHS) <= set(schema["paths"])
    grant = schema["paths"]["/api/v1/role-assignments/"]["post"]
    assert set(grant["responses"]) >= {"201", "400", "401", "403"}
    assert grant["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "RoleAssignmentCreateRequest"
    )
    approve = schema["paths"]["/api/v1/role-assignments/{id}/approve/"]["post"]
    assert set(approve["responses"]) >= {"200", "403", "404", "409"}
    assert approve["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("Refusal")
    created = schema["components"]["schemas"]["RoleAssignmentCreateRequest"]
    assert set(created["required"]) == {"user", "role", "team", "justification"}


def test_schema_and_docs_are_served(db, client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert "/api/v1/role-assignments/{id}/revoke/" in response.content.decode()
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
