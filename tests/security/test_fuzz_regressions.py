"""One test per bug the API fuzzing (tests/security/test_fuzz.py) found, each checking the real
response against the OpenAPI document the same way the fuzz does."""
import pytest
from schemathesis import checks
from schemathesis.core import NOT_SET

from governance import services
from governance.models import RoleAssignment
from releases.models import Approval, ChangeRequest
from tests.security import matrix

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")
CHECKS = [checks.response_schema_conformance, checks.status_code_conformance, checks.content_type_conformance]


@pytest.fixture
def call(db):
    """``call(user, "GET", "/api/v1/.../{id}/", id=1, body=...)``: the request sent as the fuzz
    sends it (the schema's operation, through the WSGI app, with the user's token), its response
    validated against the schema (status, content type, body); returns the response."""
    schema = matrix.load_schema()

    def send(user, method, path, body=NOT_SET, **path_parameters):
        _, key = services.api_token_create(actor=user, user=user, name="regression")
        media_type = None if body is NOT_SET else "application/json"
        case = schema[path][method].Case(path_parameters=path_parameters, body=body, media_type=media_type)
        response = case.call(headers={"Authorization": f"Token {key}"})
        case.validate_response(response, checks=CHECKS)
        return response

    with matrix.wsgi_in_test_transaction():
        yield send


def test_a_change_without_ticket_or_review_matches_the_schema(demo, call):
    """Bug: ``ticket_url`` "" failed the schema's ``format: uri`` and a null ``pir_by`` its
    ``type: string``."""
    draft = ChangeRequest.objects.get(title="Upgrade TLS library")
    assert (draft.ticket_url, draft.pir_by) == ("", None)
    assert call(demo.dev, "GET", "/api/v1/change-requests/{id}/", id=draft.pk).status_code == 200


def test_an_automatic_approval_matches_the_schema(demo, call):
    """Bug: the policy's own approval (C9) has no reviewer; the schema said ``reviewer`` is a string."""
    auto = Approval.objects.get(reviewer__isnull=True)
    response = call(demo.dev, "GET", "/api/v1/change-requests/{id}/", id=auto.change_request_id)
    assert response.json()["approvals"][0]["reviewer"] is None
    assert call(demo.dev, "GET", "/api/v1/change-requests/").status_code == 200


def test_a_deployment_without_pipeline_url_matches_the_schema(demo, call):
    """Bug: ``pipeline_url`` "" failed ``format: uri``."""
    standard = ChangeRequest.objects.get(title="Raise log level for payments-api")
    started = call(demo.ops, "POST", "/api/v1/change-requests/{id}/deployments/", body={}, id=standard.pk)
    assert started.status_code == 201 and started.json()["pipeline_url"] == ""
    assert call(demo.ops, "GET", "/api/v1/deployments/{id}/", id=started.json()["id"]).status_code == 200


def test_bootstrapped_and_every_environment_grants_match_the_schema(demo, call):
    """Bug: ``requested_by`` (null for a bootstrapped grant), ``environment`` (null for every
    environment), ``approved_by`` and ``ended_by`` were documented as non-null strings."""
    grant = RoleAssignment.objects.get(user=demo.sec, role__slug="security", status=RoleAssignment.Status.ACTIVE)
    response = call(demo.sec, "GET", "/api/v1/role-assignments/{id}/", id=grant.pk)
    assert (response.json()["requested_by"], response.json()["environment"], response.json()["ended_by"]) == (
        None, None, None)
    assert call(demo.sec, "GET", "/api/v1/role-assignments/").status_code == 200


def test_a_scheduled_every_team_campaign_matches_the_schema(demo, call):
    """Bug: a campaign the schedule started over every team has null ``team`` and ``started_by``;
    its undecided items a null ``decided_by``."""
    review = services.access_review_start(actor=None, period="fuzz-regression")
    response = call(demo.sec, "GET", "/api/v1/access-reviews/{id}/", id=review.pk)
    assert (response.json()["team"], response.json()["started_by"]) == (None, None)
    assert response.json()["items"] and response.json()["items"][0]["decided_by"] is None
    assert call(demo.sec, "GET", "/api/v1/access-review-items/").status_code == 200


def test_a_system_alert_matches_the_schema(demo, call):
    """Bug: an alert raised by the system (no actor) and still open (no resolver) answered null
    ``actor`` and ``resolved_by``, documented as non-null strings."""
    from audit.alerts import raise_alert

    alert, _ = raise_alert("audit_chain_broken", subject="fuzz regression", severity="critical")
    response = call(demo.sec, "GET", "/api/v1/alerts/{id}/", id=alert.pk)
    assert (response.json()["actor"], response.json()["resolved_by"]) == (None, None)
    assert call(demo.sec, "GET", "/api/v1/alerts/").status_code == 200


@pytest.mark.parametrize("url", [
    "/api/v1/access-review-items/?review=-9.7e266",
    "/api/v1/access-review-items/?review=99999999999999999999",
    "/api/v1/access-review-items/?review=1.5",
    "/api/v1/deployments/?change_request=-9e266",
    "/api/v1/deployments/?change_request=99999999999999999999",
])
def test_an_id_filter_out_of_range_is_bad_input_not_a_500(demo, api_as, url):
    """Bug: a huge number in an id filter reached the database, overflowed and answered 500."""
    response = api_as(demo.sec).get(url)
    assert response.status_code == 400
    field = url.split("?")[1].split("=")[0]
    assert list(response.json()) == [field] and isinstance(response.json()[field], list)


@pytest.mark.parametrize("method, url", [
    ("post", "/api/v1/role-assignments/{pk}/approve.json"),
    ("post", "/api/v1/role-assignments/{pk}/revoke.json"),
    ("post", "/api/v1/role-assignments/{pk}/reject.json"),
    ("get", "/api/v1/role-assignments/{pk}.json"),
    ("get", "/api/v1/teams.json"),
])
def test_format_suffix_routes_are_gone_not_a_500(demo, api_as, method, url):
    """Bug: the governance router's ``.json`` copies of the grant actions passed ``format`` to
    views that take none: 500. The API speaks JSON only; those routes no longer exist."""
    pk = RoleAssignment.objects.filter(status=RoleAssignment.Status.PENDING).values_list("pk", flat=True).first() or 1
    response = getattr(api_as(demo.sec), method)(url.format(pk=pk), {"reason": "x"}, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
