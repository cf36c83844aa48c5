"""Every write endpoint refuses a field it does not take (issue 14, class 8): a 400 naming it, and
nothing written, instead of dropping it and doing the rest. One mechanism does it
(``core.api.StrictSerializer``, with ``NoBody`` for endpoints that take no body); this test
enumerates the write operations of the OpenAPI document and sends each, as a persona the
authorisation matrix lets through, its matrix body plus one field nobody declared."""
import json
import re

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.security import matrix

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
UNKNOWN = "unexpected_field"


def _passes_the_checks(status) -> bool:
    """The persona gets past authentication, visibility and duties: success, or a state refusal."""
    return str(status).startswith(("2", "409"))


def _operation(url: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", url.split("?")[0])


WRITABLE = [
    pytest.param(row, persona, id=row.name)
    for row in matrix.API_ROWS if row.method in WRITE_METHODS
    for persona in [next((p for p in matrix.PERSONAS if _passes_the_checks(row.expect[p])), None)]
    if persona is not None
]


@pytest.fixture(scope="module")
def world(seeded_demo, django_db_blocker):
    with django_db_blocker.unblock():
        return matrix.build_world()


def _as(persona, world) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {world['tokens'][persona]}")
    return client


@pytest.mark.parametrize("row, persona", WRITABLE)
def test_an_unknown_field_is_refused_and_nothing_is_written(world, db, row, persona):
    body = json.loads(json.dumps(row.body or {}).replace("{today}", world["ids"]["today"]))
    url = row.url.format(**world["ids"])
    events = AuditEvent.objects.count()
    response = getattr(_as(persona, world), row.method.lower())(url, {**body, UNKNOWN: "ignored?"}, format="json")
    assert response.status_code == 400, f"{row.method} {url} as {persona}: {response.status_code} {response.content}"
    assert response.json()[UNKNOWN] == ["Unknown field."]
    assert AuditEvent.objects.count() == events
    # The same request without the stranger is what the matrix says it is: the field alone was refused.
    assert _passes_the_checks(getattr(_as(persona, world), row.method.lower())(url, body, format="json").status_code)


# Write operations whose body is not ours to define, and why.
NOT_OUR_SCHEMA = {
    ("POST", "/api/v1/integrations/github/webhook"): "GitHub's own payload, signed as sent: every field is GitHub's",
    ("POST", "/api/v1/integrations/gitlab/webhook"): "GitLab's own payload: every field is GitLab's",
}
# Write operations no matrix body can get through (the test above needs one that does), tested with
# a body that does, beside the endpoint's other tests.
TESTED_BESIDE = {
    ("POST", "/api/v1/audit/cosignatures/"): "a note a seal signed, cosigned by a registered witness: "
    "tests/audit_api/test_checkpoints.py::test_an_unknown_field_beside_a_good_cosignature_is_refused_and_nothing_is_stored",
}


def test_every_write_operation_of_the_schema_is_enumerated(world, db):
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = {(method.upper(), _operation(path)) for path, item in schema["paths"].items()
                  for method in item if method.upper() in WRITE_METHODS}
    enumerated = {(param.values[0].method, _operation(param.values[0].url)) for param in WRITABLE}
    assert operations and sorted(operations - enumerated - set(NOT_OUR_SCHEMA) - set(TESTED_BESIDE)) == []


def test_a_misspelt_expiry_no_longer_makes_a_grant_without_one(world, db):
    """The story the review told: ``expires`` for ``expires_at`` was dropped, and the grant made."""
    grant = {**matrix.NEW_GRANT, "expires": "2030-01-01T00:00:00Z"}
    response = _as("mgr", world).post("/api/v1/role-assignments/", grant, format="json")
    assert response.status_code == 400 and response.json() == {"expires": ["Unknown field."]}
