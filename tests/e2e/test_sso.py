"""Single sign-on and step-up at sign-off in Chromium, against a real OpenID provider on 127.0.0.1
(the npm ``oidc-provider``, tests/e2e/oidc/provider.mjs, installed by ``make test``): rev signs in
through the provider and signs off a production change after being made to sign in again
(prompt=login, max_age=0, acr_values); rev2's sign-off is refused when the provider's answer is too
weak (password only where production asks for a second factor) and when its auth_time is stale
(a provider that silently reused its session)."""
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from playwright.sync_api import expect

from audit.models import AuditEvent
from releases.demo import MARKER
from releases.models import Approval, ChangeRequest

PROVIDER_DIR = Path(django_settings.BASE_DIR) / "tests" / "e2e" / "oidc"
SECRET = "op-secret"
MFA = "urn:countersign:mfa"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def provider(live_server):
    node = shutil.which("node")
    if node is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").exists():
        pytest.skip("needs Node.js and tests/e2e/oidc/node_modules (make test runs npm ci there)")
    port = _free_port()
    callbacks = [f"{live_server.url}/oidc/callback/", f"{live_server.url}/sso/signoff/callback/"]
    process = subprocess.Popen([node, str(PROVIDER_DIR / "provider.mjs"), str(port), *callbacks],
                               cwd=PROVIDER_DIR, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("ready"), f"the provider did not start: {line!r}"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def sso(settings, provider):
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = "countersign"
    settings.OIDC_RP_CLIENT_SECRET = "countersign-test-secret"
    settings.OIDC_OP_ISSUER = provider
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{provider}/auth"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{provider}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{provider}/me"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{provider}/jwks"
    settings.OIDC_SIGNOFF_ACR = {"production": [MFA], "*": []}
    settings.OIDC_SIGNOFF_AMR = {"production": ["otp"], "*": []}
    settings.AUTHENTICATION_BACKENDS = ["config.lockout.LockoutBackend", "identity.sso.ProviderBackend",
                                        "identity.sso.LocalPasswordBackend",
                                        "guardian.backends.ObjectPermissionBackend"]
    return provider


def provider_login(page, login, method="mfa"):
    expect(page.get_by_role("heading", name="Test provider sign-in")).to_be_visible()
    page.get_by_label("Login").fill(login)
    page.get_by_label("Secret").fill(SECRET)
    page.get_by_label("Method").select_option(method)
    page.get_by_role("button", name="Continue").click()


def sign_in(page, base, login):
    page.goto(f"{base}/accounts/login/")
    page.get_by_role("link", name="Sign in with your organisation").click()
    provider_login(page, login)
    expect(page.locator(".topbar .who")).to_have_text(login)


def start_signoff(page, base, cr, comment):
    page.goto(f"{base}/changes/{cr.pk}/signoff/")
    expect(page.get_by_label("Password")).to_have_count(0)  # no password with single sign-on
    page.get_by_label("Approve this revision").check()
    page.get_by_label("Comment").fill(comment)
    page.get_by_role("button", name="Sign in again and sign").click()


@pytest.mark.browser
def test_sso_sign_in_and_step_up_at_sign_off(sso, live_server, chromium):
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    cr = ChangeRequest.objects.get(title=MARKER, environment__slug="production")
    base = live_server.url

    # rev signs in through the provider; matched by verified e-mail, the subject is linked.
    page = chromium.new_page()
    sign_in(page, base, "rev")
    assert AuditEvent.objects.filter(action="account.sso_linked", data__user="rev").exists()

    # Sign-off: the provider asks rev to sign in again (prompt=login), with a second factor.
    start_signoff(page, base, cr, "Checked the retry limits.")
    provider_login(page, "rev", "mfa")
    expect(page.locator(".messages")).to_contain_text(f"You signed CR-{cr.pk}")
    approval = Approval.objects.get(change_request=cr, reviewer__username="rev")
    assert approval.via == Approval.Via.PORTAL
    event = AuditEvent.objects.filter(action__in=["change_request.approval_recorded", "change_request.approved"],
                                      actor_username="rev").latest("sequence")
    step_up = event.data["step_up"]
    assert step_up["acr"] == MFA and "otp" in step_up["amr"] and step_up["auth_time"] >= time.time() - 120
    page.close()

    # rev2: a password-only answer is too weak for production.
    page = chromium.new_page()
    sign_in(page, base, "rev2")
    start_signoff(page, base, cr, "Looks right.")
    provider_login(page, "rev2", "pwd")
    expect(page.locator(".messages")).to_contain_text("weak_authentication")
    assert not Approval.objects.filter(change_request=cr, reviewer__username="rev2").exists()
    refused = AuditEvent.objects.filter(action="change_request.signoff_failed", actor_username="rev2").latest("sequence")
    assert refused.data["step_up"]["acr"] == "urn:countersign:pwd"

    # rev2 again, and the provider silently keeps the earlier authentication: auth_time is stale.
    urllib.request.urlopen(urllib.request.Request(f"{sso}/_test/stale", method="POST"), timeout=5)  # nosec B310
    time.sleep(1.1)
    start_signoff(page, base, cr, "Looks right.")
    provider_login(page, "rev2", "mfa")
    expect(page.locator(".messages")).to_contain_text("stale_authentication")
    assert not Approval.objects.filter(change_request=cr, reviewer__username="rev2").exists()
