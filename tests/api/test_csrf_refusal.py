"""A browser session's write without a valid CSRF token is refused with its own reason code,
``csrf_failed`` (issue 14, class 8): it used to say ``missing_duty`` to someone who holds the duty."""
from django.conf import settings
from rest_framework.test import APIClient

from audit.models import AuditEvent

NEW_CHANGE = {"title": "From the browser", "team": "payments", "environment": "staging", "artifact": "web:7"}


def _session(user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _csrf_token(client) -> str:
    """The token a portal page hands the browser (its cookie; the header repeats it)."""
    assert client.get("/").status_code == 200
    return client.cookies[settings.CSRF_COOKIE_NAME].value


def test_a_session_write_without_the_csrf_token_is_refused_as_csrf_failed(demo):
    events = AuditEvent.objects.count()
    response = _session(demo.dev).post("/api/v1/change-requests/", NEW_CHANGE, format="json")
    assert response.status_code == 403
    assert [reason["code"] for reason in response.json()["reasons"]] == ["csrf_failed"]
    assert "CSRF" in response.json()["detail"]
    assert AuditEvent.objects.count() == events


def test_with_the_token_the_same_write_succeeds_and_a_missing_duty_is_still_missing_duty(demo):
    dev = _session(demo.dev)
    created = dev.post("/api/v1/change-requests/", NEW_CHANGE, format="json", HTTP_X_CSRFTOKEN=_csrf_token(dev))
    assert created.status_code == 201, created.content
    ops = _session(demo.ops)
    refused = ops.post("/api/v1/change-requests/", NEW_CHANGE, format="json", HTTP_X_CSRFTOKEN=_csrf_token(ops))
    assert refused.status_code == 403
    assert [reason["code"] for reason in refused.json()["reasons"]] == ["missing_duty"]


def test_token_clients_need_no_csrf_token(demo, api_as):
    client = api_as(demo.dev)
    client.enforce_csrf_checks = True
    assert client.post("/api/v1/change-requests/", NEW_CHANGE, format="json").status_code == 201
