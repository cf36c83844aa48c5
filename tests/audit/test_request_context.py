"""Request context (IP, user agent, request id) reaches audit events through the middleware
(ARCHITECTURE.md principle 6; RULES.md L1)."""
import re

import pytest
from django.http import HttpResponse

import audit
from audit import context
from audit.middleware import RequestContextMiddleware
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def recording_view(request):
    audit.record("test.viewed", data={"path": request.path})
    return HttpResponse("recorded")


def test_ip_user_agent_and_request_id_land_on_the_event(rf):
    request = rf.get(
        "/anything/",
        REMOTE_ADDR="203.0.113.7",
        HTTP_USER_AGENT="deploy-bot/2.1",
        HTTP_X_REQUEST_ID="ci-run-42.step:7",
    )

    response = RequestContextMiddleware(recording_view)(request)

    event = AuditEvent.objects.get(action="test.viewed")
    assert event.ip == "203.0.113.7"
    assert event.user_agent == "deploy-bot/2.1"
    assert event.request_id == "ci-run-42.step:7"
    assert response["X-Request-ID"] == "ci-run-42.step:7"
    assert request.request_id == "ci-run-42.step:7"


def test_an_ipv6_caller_is_recorded(rf):
    RequestContextMiddleware(recording_view)(rf.get("/", REMOTE_ADDR="2001:db8::1"))

    assert AuditEvent.objects.get().ip == "2001:db8::1"


def test_a_request_without_an_id_gets_a_fresh_one(rf):
    response = RequestContextMiddleware(recording_view)(rf.get("/"))

    event = AuditEvent.objects.get()
    assert re.fullmatch(r"[0-9a-f]{32}", event.request_id)
    assert response["X-Request-ID"] == event.request_id


@pytest.mark.parametrize("bad_id", ["has spaces", "x" * 65, "semi;colon", "<script>"])
def test_a_malformed_request_id_is_replaced_not_recorded(rf, bad_id):
    RequestContextMiddleware(recording_view)(rf.get("/", HTTP_X_REQUEST_ID=bad_id))

    event = AuditEvent.objects.get()
    assert event.request_id != bad_id
    assert re.fullmatch(r"[0-9a-f]{32}", event.request_id)


def test_a_long_user_agent_is_cut_to_the_column(rf):
    RequestContextMiddleware(recording_view)(rf.get("/", HTTP_USER_AGENT="A" * 2000))

    assert AuditEvent.objects.get().user_agent == "A" * 512


def test_the_context_ends_with_the_request_even_when_the_view_fails(rf):
    def failing_view(request):
        audit.record("test.before_failure")
        raise ValueError("boom")

    with pytest.raises(ValueError):
        RequestContextMiddleware(failing_view)(rf.get("/", REMOTE_ADDR="198.51.100.9"))

    assert context.current() == context.EMPTY
    outside = audit.record("test.after")
    assert (outside.ip, outside.user_agent, outside.request_id) == (None, "", "")
    assert AuditEvent.objects.get(action="test.before_failure").ip == "198.51.100.9"


def test_events_outside_a_request_carry_no_request_context():
    event = audit.record("task.ran")

    assert (event.ip, event.user_agent, event.request_id) == (None, "", "")


@pytest.mark.urls("tests.audit.urls")
def test_the_installed_middleware_stack_feeds_the_audit_log(client):
    """Through the whole settings.MIDDLEWARE stack, not just the middleware class."""
    response = client.get(
        "/record/", REMOTE_ADDR="192.0.2.44", HTTP_USER_AGENT="Mozilla/5.0 (test)", HTTP_X_REQUEST_ID="req-1234"
    )

    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-1234"
    event = AuditEvent.objects.get(action="test.viewed")
    assert (event.ip, event.user_agent, event.request_id) == ("192.0.2.44", "Mozilla/5.0 (test)", "req-1234")
    assert event.data == {"path": "/record/"}
