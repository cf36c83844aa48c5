"""Single sign-on without a browser: how a returned ID token is judged at sign-off, how people are
matched, what local passwords still do, and that the portal's password sign-off is closed with SSO."""
import time

import pytest
from django.test import RequestFactory

from audit.models import Alert, AuditEvent
from identity.models import Person
from identity.sso import LocalPasswordBackend, ProviderBackend, check_step_up

pytestmark = pytest.mark.django_db
MFA = "urn:countersign:mfa"


@pytest.fixture
def stepping_up(settings, demo):
    settings.OIDC_SIGNOFF_ACR = {"production": [MFA], "*": []}
    settings.OIDC_SIGNOFF_AMR = {"production": ["otp"], "*": []}
    Person.objects.create(user=demo.rev, oidc_issuer="https://idp.example.com", oidc_subject="00u-rev")
    return demo


def claims(**overrides):
    return {"sub": "00u-rev", "auth_time": int(time.time()), "acr": MFA, "amr": ["pwd", "otp"], **overrides}


def test_a_fresh_strong_answer_from_the_same_person_signs(stepping_up):
    started = time.time() - 5
    assert check_step_up(claims(), user=stepping_up.rev, started_at=started,
                         environment=stepping_up.production) == []


@pytest.mark.parametrize(("override", "code"), [
    ({"auth_time": int(time.time()) - 3600}, "stale_authentication"),
    ({"auth_time": None}, "stale_authentication"),
    ({"acr": "urn:countersign:pwd"}, "weak_authentication"),
    ({"amr": ["pwd"]}, "weak_authentication"),
    ({"sub": "00u-someone-else"}, "wrong_subject"),
])
def test_a_stale_weak_or_foreign_answer_is_refused(stepping_up, override, code):
    problems = check_step_up(claims(**override), user=stepping_up.rev, started_at=time.time() - 5,
                             environment=stepping_up.production)
    assert [p.split(":")[0] for p in problems] == [code]


def test_staging_asks_no_particular_acr(stepping_up):
    assert check_step_up(claims(acr="urn:countersign:pwd", amr=["pwd"]), user=stepping_up.rev,
                         started_at=time.time() - 5, environment=stepping_up.staging) == []


def test_people_are_matched_by_subject_then_by_verified_email_only(demo):
    backend = ProviderBackend()
    Person.objects.create(user=demo.rev, oidc_issuer="https://idp.example.com", oidc_subject="00u-rev")
    by_subject = {"sub": "00u-rev", "_iss": "https://idp.example.com", "email": "someone@else.com"}
    assert backend.filter_users_by_claims(by_subject) == [demo.rev]
    verified = {"sub": "00u-dev", "_iss": "https://idp.example.com", "email": "DEV@example.com", "email_verified": True}
    assert backend.filter_users_by_claims(verified) == [demo.dev]
    unverified = {**verified, "email_verified": False}
    assert backend.filter_users_by_claims(unverified) == []
    # An address already linked to another subject is not taken over by a new one.
    assert backend.filter_users_by_claims({**verified, "sub": "00u-x", "email": "rev@example.com"}) == []


def test_the_id_token_must_be_for_this_client_and_issuer(settings, monkeypatch):
    from django.core.exceptions import SuspiciousOperation
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend

    settings.OIDC_RP_CLIENT_ID, settings.OIDC_OP_ISSUER = "countersign", "https://idp.example.com"
    payload = {"aud": "countersign", "iss": "https://idp.example.com", "exp": time.time() + 60}
    monkeypatch.setattr(OIDCAuthenticationBackend, "verify_token", lambda self, token, **kw: dict(payload))
    assert ProviderBackend().verify_token("t")["aud"] == "countersign"
    for wrong in ({"aud": "another-app"}, {"iss": "https://evil.example.com"}, {"exp": time.time() - 1}):
        payload.update({"aud": "countersign", "iss": "https://idp.example.com", "exp": time.time() + 60, **wrong})
        with pytest.raises(SuspiciousOperation):
            ProviderBackend().verify_token("t")


def test_with_sso_local_passwords_are_break_glass_only_and_raise_an_alert(settings, demo):
    settings.OIDC_LOCAL_PASSWORDS = False
    request = RequestFactory().post("/accounts/login/")
    backend = LocalPasswordBackend()
    assert backend.authenticate(request, username="rev", password="countersign-demo") is None
    assert backend.authenticate(request, username="admin", password="countersign-demo") == demo.admin
    assert Alert.objects.filter(kind="break_glass_login").exists()
    assert AuditEvent.objects.filter(action="account.break_glass_login", data__user="admin").exists()


def test_with_sso_the_password_sign_off_is_closed(settings, demo, client_as):
    from releases.demo import MARKER
    from releases.models import Approval, ChangeRequest

    settings.OIDC_ENABLED = True
    cr = ChangeRequest.objects.get(title=MARKER, environment__slug="production")
    client = client_as(demo.rev)
    page = client.get(f"/changes/{cr.pk}/signoff/")
    assert b'name="password"' not in page.content and f"/sso/signoff/{cr.pk}/".encode() in page.content
    posted = client.post(f"/changes/{cr.pk}/signoff/", {"decision": "approve", "comment": "ok",
                                                         "password": "countersign-demo", "revision": cr.revision})
    assert posted.status_code == 400
    assert not Approval.objects.filter(change_request=cr, reviewer=demo.rev).exists()


def test_without_a_provider_sign_off_still_asks_for_the_password(demo, client_as):
    from releases.demo import MARKER
    from releases.models import ChangeRequest

    cr = ChangeRequest.objects.get(title=MARKER, environment__slug="production")
    page = client_as(demo.rev).get(f"/changes/{cr.pk}/signoff/")
    assert b'name="password"' in page.content
    assert b"Sign in with your organisation" not in client_as(None).get("/accounts/login/").content
