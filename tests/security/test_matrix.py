"""Runs the authorization matrix of ``tests/security/matrix.py``: one test per (row, persona) cell,
a completeness check against the URL resolver and the admin registry, and the token stories of
RULES.md G5 (revoked and expired grants, deactivated users, revoked and expired keys)."""
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.security import matrix
from tests.security.matrix import PERSONAS

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

ROWS = matrix.all_rows()
CELLS = [pytest.param(row, persona, id=f"{persona}-{row.name}") for row in ROWS for persona in PERSONAS]


# --- The world: demo objects the rows' URLs name, tokens and sessions, built once per module ---------


@pytest.fixture(scope="module")
def world(seeded_demo, django_db_blocker):
    """Placeholders for the rows' URLs, one API key and one session per persona. Built inside the
    module's seeded transaction (``seed_demo``, as the ``demo`` fixture loads it), so every cell,
    each in its own savepoint, starts from the same state and nothing outlives the module."""
    with django_db_blocker.unblock():
        return matrix.build_world()


def _client(row, persona, world):
    if row.kind == "api":
        client = APIClient()
        if persona != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Token {world['tokens'][persona]}")
        return client
    client = Client()
    if persona != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = world["sessions"][persona]
    return client


def call(row, persona, world):
    client = _client(row, persona, world)
    url = row.url.format(**world["ids"])
    body = None
    if row.body is not None:
        text = json.dumps(row.body)
        for name, value in world["ids"].items():  # {today}, {review_item}, ...: a body may name the world's objects
            text = text.replace(f"{{{name}}}", str(value))
        body = json.loads(text)
    method = getattr(client, row.method.lower())
    if row.kind == "api":
        return method(url, body, format="json") if body is not None else method(url)
    return method(url, body) if body is not None else method(url)


def _codes(response) -> list[str]:
    try:
        return [reason["code"] for reason in response.json().get("reasons", [])]
    except (ValueError, AttributeError, TypeError):
        return []


@pytest.mark.sweep
@pytest.mark.parametrize("row, persona", CELLS)
def test_cell(world, db, row, persona):
    """``world`` (module-scoped, on the demo seed) is built before ``db`` opens this cell's
    savepoint: asking for ``demo`` here would open the savepoint first and roll the world back
    with the first cell."""
    expected = row.expect[persona]
    status, _, code = str(expected).partition(" ")
    events = AuditEvent.objects.count()
    response = call(row, persona, world)
    got = response.status_code
    assert got == int(status), f"{row.method} {row.url} as {persona}: {got}, expected {expected} {response.get('Location', '')}"
    if code:
        assert code in _codes(response), f"{row.method} {row.url} as {persona}: reasons {_codes(response)}"
    if got >= 400 or "login" in response.get("Location", ""):
        # Refused, or sent to log in: nothing was recorded, so nothing was done.
        assert AuditEvent.objects.count() == events


# --- Completeness: every served URL pattern and every admin model has declared statuses --------------

# Patterns deliberately outside the matrix, with the reason.
NOT_IN_MATRIX = {
    "bench/": "served only when COUNTERSIGN_BENCH_ENDPOINTS is on (make bench), never by default",
}


def _routes(patterns, prefix=""):
    """Every pattern's full route, joined as ``ResolverMatch.route`` joins them (a nested
    pattern's leading ``^`` dropped)."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern).removeprefix("^") if prefix else str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route


class _AnyId(dict):
    def __missing__(self, key):
        return "1"


def _route_of(row) -> str:
    path = row.url.format_map(_AnyId()).split("?")[0]
    return resolve(path).route


def test_every_url_pattern_has_a_row():
    served = {route for route in _routes(get_resolver().url_patterns)
              if not route.startswith(tuple(NOT_IN_MATRIX))}
    covered = {_route_of(row) for row in ROWS}
    assert sorted(served - covered) == [], "URL patterns with no row in tests/security/matrix.py"
    # A row meant for a page must reach that page, not the admin's catch-all (which would hide a gap).
    catch_all = {row.name for row in ROWS if _route_of(row) == "admin/(?P<url>.*)$"}
    assert catch_all == {"admin-catch-all"}


def test_every_admin_model_has_declared_pages():
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert sorted(registered - set(matrix.ADMIN_EXPECT)) == [], "admin models with no statuses in ADMIN_EXPECT"
    assert sorted(registered - set(matrix.ADMIN_OBJECTS)) == [], "admin models with no object in ADMIN_OBJECTS"
    assert sorted(set(matrix.ADMIN_EXPECT) - registered) == [], "ADMIN_EXPECT names models no longer registered"
    for row in ROWS:
        assert None not in row.expect.values(), f"{row.name}: a persona has no declared status"


def test_the_matrix_is_as_big_as_it_says():
    assert len(CELLS) == len(ROWS) * len(PERSONAS) >= 1000


# --- G5: revoked or expired grants, deactivated users, revoked or expired keys ------------------------

NEW_CHANGE = "/api/v1/change-requests/"


def _create_change(client):
    return client.post(NEW_CHANGE, {**matrix.NEW_CHANGE, "title": "After the change"}, format="json")


def _refused(response, status, code=None):
    assert response.status_code == status, response.content
    if code:
        assert code in _codes(response)


def test_a_revoked_grant_stops_the_same_token_at_once(demo, api_as):
    from governance import services
    from tests.api.shortcuts import grant_of

    client = api_as(demo.dev)
    assert _create_change(client).status_code == 201
    services.role_assignment_revoke(actor=demo.mgr, assignment=grant_of(demo.dev, "developer", demo.staging),
                                    reason="Left the team.")
    events = AuditEvent.objects.count()
    _refused(_create_change(client), 403, "missing_duty")
    assert AuditEvent.objects.count() == events


def test_an_expired_grant_stops_the_same_token_before_the_expiry_task_runs(demo, api_as):
    from tests.api.shortcuts import grant_of

    client = api_as(demo.dev)
    assert _create_change(client).status_code == 201
    grant = grant_of(demo.dev, "developer", demo.staging)
    # Time passes: the grant's expiry is now behind us, and no task has marked it expired yet.
    type(grant).objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    events = AuditEvent.objects.count()
    _refused(_create_change(client), 403, "missing_duty")
    assert AuditEvent.objects.count() == events


def test_a_revoked_view_audit_grant_narrows_what_the_token_sees_at_once(demo, api_as):
    from governance import services
    from governance.models import RoleAssignment
    from releases import services as releases

    identity_change = releases.change_request_create(
        actor=demo.idev, team=demo.identity, environment=demo.staging, title="Identity change", artifact="id:1")
    client = api_as(demo.sec)
    url = f"/api/v1/change-requests/{identity_change.pk}/"
    assert (client.get(url).status_code, client.get("/api/v1/alerts/").status_code) == (200, 200)
    grant = RoleAssignment.objects.get(user=demo.sec, role__slug="security", status=RoleAssignment.Status.ACTIVE)
    services.role_assignment_revoke(actor=demo.mgr, assignment=grant, reason="Moved on.")
    # sec is still a member of payments (so still signed in) but no longer holds view_audit.
    assert client.get(url).status_code == 404
    _refused(client.get("/api/v1/alerts/"), 403, "missing_duty")


def test_a_deactivated_users_token_is_refused(demo, api_as):
    client = api_as(demo.ops)
    assert client.get("/api/v1/deployments/").status_code == 200
    get_user_model().objects.filter(pk=demo.ops.pk).update(is_active=False)
    events = AuditEvent.objects.count()
    for response in (client.get("/api/v1/deployments/"),
                     client.post(f"/api/v1/deployments/{1}/finish/", {"outcome": "succeeded"}, format="json")):
        assert response.status_code == 401
        assert set(response.json()) == {"detail"}
    assert AuditEvent.objects.count() == events


def test_revoked_and_expired_tokens_are_refused(demo):
    from governance import services
    from governance.models import ApiToken

    revoked, revoked_key = services.api_token_create(actor=demo.dev, user=demo.dev, name="revoked")
    expired, expired_key = services.api_token_create(actor=demo.dev, user=demo.dev, name="expired")
    services.api_token_revoke(actor=demo.dev, token=revoked)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for key in (revoked_key, expired_key, "cs_not-a-key"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        response = _create_change(client)
        assert response.status_code == 401
        assert set(response.json()) == {"detail"}
