"""The OpenAPI document describes every releases endpoint's body and refusals (API.md), and
validates without a warning."""
import pytest
import yaml
from django.core.management import call_command

SHARED = {"401", "403", "404", "409", "429", "503"}  # every operation's (core/openapi.py)
WITH_BODY = SHARED | {"415"}  # the API takes JSON only
ENDPOINTS = {
    ("/api/v1/change-requests/", "post"): {"201", "400"} | WITH_BODY,
    ("/api/v1/change-requests/{id}/", "patch"): {"200", "400"} | WITH_BODY,
    ("/api/v1/change-requests/{id}/submit/", "post"): {"200", "400"} | SHARED,
    ("/api/v1/change-requests/{id}/approve/", "post"): {"200", "400"} | WITH_BODY,
    ("/api/v1/change-requests/{id}/reject/", "post"): {"200", "400"} | WITH_BODY,
    ("/api/v1/change-requests/{id}/cancel/", "post"): {"200", "400"} | WITH_BODY,
    ("/api/v1/change-requests/{id}/request-changes/", "post"): {"200", "400"} | WITH_BODY,
    ("/api/v1/change-requests/{id}/withdraw/", "post"): {"200", "400"} | WITH_BODY,
    ("/api/v1/change-requests/{id}/re-review/", "post"): {"200", "400"} | WITH_BODY,
    ("/api/v1/change-requests/{id}/retry/", "post"): {"201", "400"} | WITH_BODY,
    ("/api/v1/change-requests/{id}/gate/", "get"): {"200", "400"} | SHARED,
    ("/api/v1/change-requests/{id}/deployments/", "post"): {"201", "400"} | WITH_BODY,
    ("/api/v1/deployments/{id}/finish/", "post"): {"200", "400"} | WITH_BODY,
    ("/api/v1/deployments/{id}/rollback/", "post"): {"200", "400"} | WITH_BODY,
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    path = tmp_path_factory.mktemp("schema") / "openapi.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path, method", list(ENDPOINTS))
def test_each_action_documents_its_responses(schema, path, method):
    operation = schema["paths"][path][method]
    assert set(operation["responses"]) == ENDPOINTS[(path, method)]
    assert operation["summary"]


def test_bodies_are_described(schema):
    components = schema["components"]["schemas"]
    create = components["ChangeRequestCreateRequest"]
    assert set(create["required"]) == {"title", "team", "environment", "artifact"}
    assert components["DeploymentFinishRequest"]["properties"]["outcome"]["$ref"]
    gate = schema["paths"]["/api/v1/change-requests/{id}/gate/"]["get"]
    [action] = [p for p in gate["parameters"] if p["name"] == "action"]
    assert action["required"] and action["schema"]["enum"] == ["approve", "deploy"]
    assert set(components["Gate"]["required"]) == {"allowed", "action", "reasons", "requirements"}
    listing = schema["paths"]["/api/v1/change-requests/"]["get"]
    assert {"state", "environment", "team", "author", "awaiting_me"} <= {p["name"] for p in listing["parameters"]}


def test_the_refusal_shape_is_shared(schema):
    approve = schema["paths"]["/api/v1/change-requests/{id}/approve/"]["post"]["responses"]
    refusal = approve["403"]["content"]["application/json"]["schema"]["$ref"]
    assert refusal == approve["409"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Refusal"
