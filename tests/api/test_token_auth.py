"""A key acts as its user; no, bad, expired or revoked keys get 401 with ``{detail}``."""
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from governance import services
from governance.models import ApiToken

TEAMS = "/api/v1/teams/"


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def assert_unauthenticated(response):
    assert response.status_code == 401
    assert set(response.json()) == {"detail"}
    assert response["WWW-Authenticate"] == "Token"


@pytest.fixture
def dev_key(demo):
    token, key = services.api_token_create(actor=demo.dev, user=demo.dev, name="ci")
    return token, key


def test_a_valid_key_acts_as_its_user(dev_key):
    _, key = dev_key
    response = client_with(key).get("/api/v1/role-assignments/")
    assert response.status_code == 200
    assert {row["user"] for row in response.json()["results"]} == {"dev"}


def test_no_credentials_get_401(demo):
    assert_unauthenticated(APIClient().get(TEAMS))


def test_a_wrong_key_gets_401(dev_key):
    _, key = dev_key
    assert_unauthenticated(client_with(key + "x").get(TEAMS))
    assert_unauthenticated(client_with("").get(TEAMS))


def test_a_malformed_authorization_header_gets_401(dev_key):
    _, key = dev_key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key} extra")
    assert_unauthenticated(client.get(TEAMS))


def test_an_expired_key_gets_401(dev_key):
    token, key = dev_key
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_unauthenticated(client_with(key).get(TEAMS))


def test_a_revoked_key_gets_401(demo, dev_key):
    token, key = dev_key
    assert client_with(key).get(TEAMS).status_code == 200
    services.api_token_revoke(actor=demo.dev, token=token)
    assert_unauthenticated(client_with(key).get(TEAMS))


def test_a_disabled_account_key_gets_401(demo, dev_key):
    _, key = dev_key
    demo.dev.is_active = False
    demo.dev.save(update_fields=["is_active"])
    assert_unauthenticated(client_with(key).get(TEAMS))


def test_use_is_recorded(dev_key):
    token, key = dev_key
    assert token.last_used_at is None
    before = timezone.now()
    client_with(key).get(TEAMS)
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_at >= before


def test_the_key_is_stored_only_as_its_hash(dev_key):
    token, key = dev_key
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert all(key not in str(value) for value in row.values())
    assert len(row["key_hash"]) == 64 and key.startswith(row["prefix"])
    events = AuditEvent.objects.filter(action="api_token.created", target_id=str(token.pk))
    assert events.exists()
    assert all(key not in str(event.data) for event in events)


def test_a_browser_session_is_accepted(demo):
    client = APIClient()
    assert client.login(username="dev", password="countersign-demo")
    assert client.get(TEAMS).status_code == 200
