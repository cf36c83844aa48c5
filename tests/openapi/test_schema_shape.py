"""The OpenAPI document's shape a generator relies on (issue 19 item 3, core/openapi.py): the shared
error responses on every operation, request bodies in JSON only, binary downloads typed binary,
nullable fields marked (checked on real responses), the Token scheme, a server, stable operation ids.
And what the server does to match: a form body to the API is 415 ``{detail}``."""
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from schemathesis import checks

from releases.models import ChangeRequest
from tests.security import matrix

SHARED = {  # status: (components/responses name, body schema)
    "401": ("Unauthenticated", "Detail"), "403": ("Forbidden", "Refusal"), "404": ("NotFound", "Detail"),
    "409": ("Conflict", "Refusal"), "429": ("Throttled", "Detail"), "503": ("Unavailable", "Detail"),
}
METHODS = {"get", "put", "post", "patch", "delete"}
# Request bodies in another media type than JSON, each with its reason; empty: none.
NON_JSON_BODIES: dict[tuple[str, str], str] = {}
OPERATION_IDS = Path(__file__).with_name("operation_ids.txt")


@pytest.fixture(scope="module")
def document(tmp_path_factory):
    path = tmp_path_factory.mktemp("schema") / "openapi.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def resolve(document, response: dict) -> dict:
    if "$ref" in response:
        return document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def test_every_operation_answers_the_shared_errors(document):
    assert len(list(operations(document))) >= 40
    for path, method, operation in operations(document):
        responses = operation["responses"]
        for status, (name, body) in SHARED.items():
            assert status in responses, f"{method} {path}: no {status}"
            response = responses[status]
            if "$ref" in response:
                assert response["$ref"] == f"#/components/responses/{name}", f"{method} {path} {status}"
            response = resolve(document, response)
            assert response["content"] == {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}, \
                f"{method} {path} {status}"
            assert response["description"]
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"], f"{method} {path} {status}"
        if "400" in responses:
            schema = resolve(document, responses["400"])["content"]["application/json"]["schema"]
            assert schema.get("$ref") in ("#/components/schemas/FieldErrors", "#/components/schemas/Detail"), \
                f"{method} {path}: a 400 of its own shape"


def test_the_shared_shapes_are_api_md_s(document):
    schemas = document["components"]["schemas"]
    assert schemas["Detail"]["required"] == ["detail"]
    assert schemas["Refusal"]["required"] == ["detail", "reasons"]
    assert schemas["Refusal"]["properties"]["reasons"]["items"] == {"$ref": "#/components/schemas/Reason"}
    assert schemas["Reason"]["required"] == ["code", "message"]
    assert schemas["FieldErrors"]["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    # Request bodies are described by their own docstrings, not by their base class's (core.api).
    assert not [name for name, schema in schemas.items() if "input serializer" in schema.get("description", "")]


def test_request_bodies_are_json_only_and_may_be_refused_as_415(document):
    bodies = 0
    for path, method, operation in operations(document):
        if "requestBody" not in operation:
            continue
        bodies += 1
        media = set(operation["requestBody"]["content"])
        if (path, method) not in NON_JSON_BODIES:
            assert media == {"application/json"}, f"{method} {path}: {media}"
        assert operation["responses"]["415"] == {"$ref": "#/components/responses/UnsupportedMediaType"}
    assert bodies >= 15


def test_binary_downloads_are_binary(document):
    download = document["paths"]["/api/v1/evidence-exports/{id}/download/"]["get"]["responses"]["200"]
    assert download["content"] == {"application/zip": {"schema": {"type": "string", "format": "binary"}}}
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            for media, content in resolve(document, response).get("content", {}).items():
                if not media.endswith("json"):
                    assert content["schema"] == {"type": "string", "format": "binary"}, f"{method} {path} {status}"


def test_the_token_scheme_and_a_server_are_described(document):
    token = document["components"]["securitySchemes"]["tokenAuth"]
    assert (token["type"], token["in"], token["name"]) == ("apiKey", "header", "Authorization")
    assert "`Token <key>`" in token["description"] and 'prefix="Token"' in token["description"]
    [server] = document["servers"]
    assert server["url"].startswith("http")


def test_operation_ids_are_stable(document):
    """operation_ids.txt pins every operation's id (a generated client's module and function names):
    add a line for a new operation; never rename or remove one (API.md: add freely, rename nothing)."""
    current = {f"{method.upper()} {path} {operation['operationId']}" for path, method, operation in operations(document)}
    pinned = set(OPERATION_IDS.read_text().splitlines())
    assert not pinned - current, f"renamed or removed: {sorted(pinned - current)}"
    assert not current - pinned, f"new operations, add them to {OPERATION_IDS.name}: {sorted(current - pinned)}"
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))


def test_prior_environment_is_nullable(document):
    prior = document["components"]["schemas"]["Requirements"]["properties"]["prior_environment"]
    assert prior["nullable"] is True


# --- Against real responses ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(seeded_demo, django_db_blocker):
    with django_db_blocker.unblock():
        return matrix.build_world()


@pytest.fixture(scope="module")
def schema(world, django_db_blocker):
    with django_db_blocker.unblock():
        return matrix.load_schema()


@pytest.fixture
def call(db, schema, world):
    """``call(persona, method, path, **parameters)``: the response, validated against the document
    (schemathesis' response-schema, status and content-type checks)."""
    with matrix.wsgi_in_test_transaction():
        def run(persona, method, path, *, path_parameters=None, query=None):
            case = schema[path][method].Case(path_parameters=path_parameters or {}, query=query or {})
            response = case.call(headers={"Authorization": f"Token {world['tokens'][persona]}"})
            case.validate_response(response, checks=[checks.response_schema_conformance, checks.status_code_conformance,
                                                     checks.content_type_conformance])
            return response
        yield run


def test_the_gate_s_null_prior_environment_validates(call, demo):
    staging = ChangeRequest.objects.filter(environment=demo.staging).order_by("pk").first()
    response = call("admin", "GET", "/api/v1/change-requests/{id}/gate/", path_parameters={"id": staging.pk},
                    query={"action": "deploy"})
    assert response.status_code == 200
    assert response.json()["requirements"]["prior_environment"] is None


def test_every_read_of_the_world_validates(call, document, world):
    """Every GET of the API, as the superuser and the auditor, on up to five real objects of each
    resource in every state the matrix world holds: a null where the schema says not nullable (or a
    field of the wrong type) fails schemathesis' response-schema check."""
    names = {"teams": "slug", "environments": "slug", "roles": "slug"}
    from tests.security.test_fuzz import real_names

    real = real_names(world)
    read = 0
    for path, method, operation in operations(document):
        if method != "get" or operation.get("parameters") and any(
            p.get("required") and p["in"] == "query" for p in operation["parameters"]
        ):
            continue
        resource = path.split("/")[3]
        param = names.get(resource, "id")
        targets = [None] if "{" not in path else real.get(resource, [])[:5]
        for persona in ("admin", "auditor"):
            for target in targets:
                response = call(persona, "GET", path, path_parameters={param: target} if target is not None else None)
                assert response.status_code < 500
                read += 1
    assert read >= 60


def test_a_form_body_is_415_and_writes_nothing(api_as, demo):
    before = ChangeRequest.objects.count()
    response = api_as(demo.dev).post("/api/v1/change-requests/", {"title": "x", "team": "payments",
                                                                  "environment": "staging", "artifact": "a:1"},
                                     format="multipart")
    assert response.status_code == 415
    assert set(response.json()) == {"detail"}
    urlencoded = api_as(demo.dev).post("/api/v1/change-requests/", "title=x&team=payments",
                                       content_type="application/x-www-form-urlencoded")
    assert urlencoded.status_code == 415 and set(urlencoded.json()) == {"detail"}
    assert ChangeRequest.objects.count() == before
