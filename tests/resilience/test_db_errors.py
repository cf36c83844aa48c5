"""The 503 of config/db_errors.py without a real outage (runs on SQLite too): each of the three
doors — the API's exception handler, the middleware for views, ``handler500`` for middleware —
turns "the database is gone" into 503 + Retry-After with no trace, and leaves other errors alone."""
import json

import pytest
from django.db import DatabaseError, InterfaceError, OperationalError
from django.test import RequestFactory

from config import db_errors
from config.db_errors import DatabaseUnavailableMiddleware, server_error

pytestmark = pytest.mark.resilience


def test_the_api_answers_503_in_its_own_shape_when_the_database_is_gone(demo, api_as, monkeypatch):
    from releases.api.views import ChangeRequestViewSet

    client = api_as(demo.dev)

    def gone(self):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(ChangeRequestViewSet, "get_queryset", gone)
    response = client.get("/api/v1/change-requests/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {"detail": db_errors.DETAIL}
    assert b"127.0.0.1" not in response.content and b"Traceback" not in response.content


@pytest.mark.parametrize("error", [OperationalError("server closed the connection"), InterfaceError("closed")])
def test_the_middleware_answers_503_for_a_portal_page(error):
    request = RequestFactory().get("/", HTTP_ACCEPT="text/html")
    response = DatabaseUnavailableMiddleware(lambda r: None).process_exception(request, error)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    assert b"Service unavailable" in response.content and b"server closed" not in response.content


def test_the_middleware_leaves_other_errors_to_django():
    request = RequestFactory().get("/")
    middleware = DatabaseUnavailableMiddleware(lambda r: None)
    assert middleware.process_exception(request, DatabaseError("syntax error")) is None
    assert middleware.process_exception(request, ValueError("bug")) is None


def test_handler500_answers_503_for_an_outage_raised_in_a_middleware_and_500_otherwise(db):
    request = RequestFactory().get("/api/v1/teams/")
    try:
        raise OperationalError("the database system is shutting down")
    except OperationalError:
        response = server_error(request)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert json.loads(response.content) == {"detail": db_errors.DETAIL}
    try:
        raise ValueError("a real bug")
    except ValueError:
        response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500


def test_healthz_says_503_with_retry_after_when_the_database_is_gone(db, client, settings, monkeypatch):
    from config import health

    settings.CELERY_BROKER_URL = ""

    class Gone:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(health, "connection", Gone())
    response = client.get("/healthz")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json() == {"status": "unavailable", "checks": {"database": "error: OperationalError"}}
