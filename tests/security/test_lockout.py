"""Brute force and enumeration (issue 7.3): five wrong passwords lock the login page and the
sign-off for that username, with one high alert and one audit event per lockout; the answers never
tell whether a username exists. axes keeps its counts in the database, so each test's rollback
resets them."""
from datetime import timedelta
from unittest import mock

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import Alert, AuditEvent
from governance import services as governance_services
from releases import demo as release_demo
from releases.models import Approval, ChangeRequest

PASSWORD = "countersign-demo"
LIMIT = 5
LOGIN = "/accounts/login/"
BAD_LOGIN = "Your username and password didn't match"


def login(client, username, password="wrong-password"):
    return client.post(LOGIN, {"username": username, "password": password})


def fail(client, username, times):
    return [login(client, username).status_code for _ in range(times)]


def lockout_alerts(username):
    return Alert.objects.filter(kind="login_lockout", dedupe_key=f"login_lockout:{username}")


@pytest.fixture
def retry_production(demo):
    """The demo's pending production change that ``rev`` may sign off."""
    return ChangeRequest.objects.get(team=demo.payments, title=release_demo.MARKER, environment=demo.production)


def sign(client, cr, password):
    return client.post(f"/changes/{cr.pk}/signoff/", {"decision": "approve", "comment": "Reviewed.",
                                                       "password": password, "revision": cr.revision})


# --- Login lockout ----------------------------------------------------------------------------------


def test_the_fifth_wrong_password_locks_the_login_even_for_the_right_password(demo):
    client = Client()

    assert fail(client, "dev", LIMIT - 1) == [200] * (LIMIT - 1)
    locked = login(client, "dev")
    right = login(client, "dev", PASSWORD)

    assert locked.status_code == 429 and right.status_code == 429
    assert int(right["Retry-After"]) == 15 * 60
    assert b"Too many wrong passwords" in right.content
    assert "_auth_user_id" not in client.session


def test_a_lockout_raises_one_high_alert_and_one_audit_event(demo):
    client = Client()

    fail(client, "dev", LIMIT + 3)  # three more attempts while locked: no new alert or event

    alert = lockout_alerts("dev").get()
    assert (alert.severity, alert.status, alert.actor) == ("high", "open", demo.dev)
    assert alert.details["where"] == "login" and alert.details["ip_address"] == "127.0.0.1"
    event = AuditEvent.objects.get(action="auth.locked_out")
    assert (event.target_id, event.data["username"], event.data["failures"]) == (str(demo.dev.pk), "dev", LIMIT)
    assert event.ip == "127.0.0.1"


def test_the_username_is_locked_from_every_address_and_other_users_are_not(demo):
    for last_octet in range(1, LIMIT + 1):  # one failure from each of five addresses
        login(Client(REMOTE_ADDR=f"10.0.0.{last_octet}"), "dev")

    assert login(Client(REMOTE_ADDR="10.9.9.9"), "dev", PASSWORD).status_code == 429
    assert login(Client(REMOTE_ADDR="10.0.0.1"), "rev", PASSWORD).status_code == 302


def test_test_clients_and_shells_without_a_request_are_refused_too(demo):
    fail(Client(), "dev", LIMIT)

    assert Client().login(username="dev", password=PASSWORD) is False
    assert Client().login(username="rev", password=PASSWORD) is True


def test_the_lock_lifts_after_the_cool_off_and_a_new_lockout_is_audited_again(demo):
    client = Client()
    fail(client, "dev", LIMIT)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert login(client, "dev", PASSWORD).status_code == 302
    fail(Client(), "dev", LIMIT)

    assert AuditEvent.objects.filter(action="auth.locked_out").count() == 2
    assert lockout_alerts("dev").count() == 1  # the open alert is not duplicated


# --- Sign-off lockout -------------------------------------------------------------------------------


def test_five_wrong_sign_off_passwords_lock_the_sign_off_and_the_login(demo, retry_production):
    client = Client()
    client.force_login(demo.rev)

    statuses = [sign(client, retry_production, "not-my-password").status_code for _ in range(LIMIT)]
    right = sign(client, retry_production, PASSWORD)

    assert statuses == [400] * (LIMIT - 1) + [429]
    assert right.status_code == 429 and b"Too many wrong passwords" in right.content
    assert not Approval.objects.filter(change_request=retry_production).exists()
    retry_production.refresh_from_db()
    assert retry_production.state == ChangeRequest.State.PENDING
    alert = lockout_alerts("rev").get()
    assert (alert.severity, alert.details["where"]) == ("high", "sign-off")
    assert AuditEvent.objects.filter(action="change_request.signoff_failed").count() == LIMIT
    assert login(Client(), "rev", PASSWORD).status_code == 429


def test_a_wrong_sign_off_password_refuses_and_writes_nothing_but_the_record(demo, retry_production):
    client = Client()
    client.force_login(demo.rev)
    before = retry_production.revision

    response = sign(client, retry_production, "not-my-password")

    assert response.status_code == 400
    assert not Approval.objects.filter(change_request=retry_production).exists()
    retry_production.refresh_from_db()
    assert (retry_production.state, retry_production.revision) == (ChangeRequest.State.PENDING, before)
    assert list(AuditEvent.objects.filter(target_id=str(retry_production.pk), action__startswith="change_request.")
                .values_list("action", flat=True).order_by("-sequence")[:1]) == ["change_request.signoff_failed"]
    assert not Alert.objects.filter(kind="login_lockout").exists()


# --- No username enumeration ------------------------------------------------------------------------


def test_wrong_password_and_unknown_user_get_the_same_answer(demo):
    wrong = login(Client(), "dev")
    unknown = login(Client(), "no-such-user")

    assert wrong.status_code == unknown.status_code == 200
    assert BAD_LOGIN in wrong.content.decode() and BAD_LOGIN in unknown.content.decode()
    assert wrong.context["form"].errors == unknown.context["form"].errors


def test_an_unknown_username_locks_out_exactly_like_a_real_one(demo):
    real, unknown = Client(), Client()

    assert fail(real, "dev", LIMIT + 1) == fail(unknown, "no-such-user", LIMIT + 1)
    assert login(real, "dev").content == login(unknown, "no-such-user").content


def test_both_login_paths_run_the_password_hasher(demo):
    """Django's ModelBackend hashes the password for an unknown username too, so the answer takes
    as long as for a real one."""
    original = MD5PasswordHasher.encode
    for username in ("dev", "no-such-user"):
        with mock.patch.object(MD5PasswordHasher, "encode", autospec=True, side_effect=original) as encode:
            login(Client(), username)
        assert encode.call_count >= 1, username


def test_token_refusals_do_not_say_why(demo):
    _, revoked_key = governance_services.api_token_create(actor=demo.dev, user=demo.dev, name="old")
    governance_services.api_token_revoke(actor=demo.dev, token=demo.dev.api_tokens.get(name="old"))
    _, inactive_key = governance_services.api_token_create(actor=demo.dev2, user=demo.dev2, name="ci")
    type(demo.dev2).objects.filter(pk=demo.dev2.pk).update(is_active=False)

    bodies = []
    for key in ("not-a-real-key", revoked_key, inactive_key):
        response = APIClient().get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Token {key}")
        assert response.status_code == 401
        bodies.append(response.json())
    assert bodies[0] == bodies[1] == bodies[2] == {"detail": "Invalid, expired or revoked token."}
