"""Single sign-on through an OpenID Connect provider (mozilla-django-oidc) and step-up at sign-off.

Sign-in: the provider's ID token is verified (signature from its JWKS, issuer, audience, nonce,
PKCE) and the person is matched by the provider's subject (``Person.oidc_subject``), or, the first
time, by a verified e-mail address of an enabled account, which links the subject. Nobody is
created here: accounts come from SCIM (``OIDC_CREATE_USER`` off).

Local passwords: with SSO on they work only for superusers (the break-glass administrator) unless
``OIDC_LOCAL_PASSWORDS``; every such sign-in raises an alert.

Sign-off step-up: the reviewer's decision is kept in the session, the browser goes to the provider
with ``prompt=login``, ``max_age=0`` and the environment's ``acr_values``; the decision is signed
only if the returned ID token is this person's, its ``auth_time`` is after the sign-off started (a
silent reuse of the provider's session is refused) and its ``acr``/``amr`` meet the environment's
requirement. The approval's audit event records ``auth_time``, ``acr`` and ``amr``.
"""
import hashlib
import logging
import secrets
import time
from base64 import urlsafe_b64encode
from datetime import datetime, timezone as dt_timezone
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.decorators import login_required
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

import audit
from audit.alerts import raise_alert
from core.errors import Refused
from identity.models import Person
from releases import services as release_services
from releases.forms import SignoffForm
from releases.models import Approval, ChangeRequest

logger = logging.getLogger(__name__)
SESSION_KEY = "countersign_signoff_step_up"


def context(request) -> dict:
    return {"sso_enabled": settings.OIDC_ENABLED}


class ProviderBackend(OIDCAuthenticationBackend):
    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("The ID token is not for this client.")
        if settings.OIDC_OP_ISSUER and payload.get("iss", "").rstrip("/") != settings.OIDC_OP_ISSUER:
            raise SuspiciousOperation("The ID token is from another issuer.")
        if payload.get("exp", 0) < time.time():
            raise SuspiciousOperation("The ID token has expired.")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        claims = dict(super().get_userinfo(access_token, id_token, payload))
        claims["sub"] = payload.get("sub") if claims.get("sub") in (None, payload.get("sub")) else None
        claims["_iss"] = payload.get("iss", "")
        return claims

    def verify_claims(self, claims):
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims):
        users = get_user_model().objects.filter(is_active=True)
        linked = users.filter(person__oidc_subject=claims["sub"], person__oidc_issuer=claims["_iss"])
        if linked.exists():
            return list(linked)
        email = (claims.get("email") or "").strip()
        if not email or claims.get("email_verified") is not True:
            return []
        return list(users.filter(email__iexact=email).exclude(person__oidc_subject__gt=""))

    def update_user(self, user, claims):
        with transaction.atomic():
            person, _ = Person.objects.get_or_create(user=user)
            if not person.oidc_subject:
                person.oidc_subject, person.oidc_issuer = claims["sub"], claims["_iss"]
                person.save(update_fields=["oidc_subject", "oidc_issuer"])
                audit.record("account.sso_linked", actor=user, target=user,
                             data={"user": user.username, "issuer": claims["_iss"], "subject": claims["sub"],
                                   "matched_by": "verified e-mail"})
            audit.record("account.sso_login", actor=user, target=user,
                         data={"user": user.username, "issuer": claims["_iss"], "subject": claims["sub"]})
        return user


class LocalPasswordBackend(ModelBackend):
    """With SSO on: passwords only for the break-glass superusers (unless OIDC_LOCAL_PASSWORDS),
    and each use raises an alert."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            return None
        if not (user.is_superuser or settings.OIDC_LOCAL_PASSWORDS):
            return None
        if user.is_superuser:
            raise_alert("break_glass_login", severity="high", actor=user,
                        subject=f"Break-glass local sign-in by {user.get_username()} while single sign-on is on",
                        details={"user": user.get_username()})
            audit.record("account.break_glass_login", actor=user, target=user, data={"user": user.get_username()})
        return user


# --- Step-up at sign-off -------------------------------------------------------------------------


def requirement(environment) -> tuple[list[str], list[str]]:
    """The acr values accepted and the amr values of which one is needed, for this environment."""
    tier = environment.tier
    acr = settings.OIDC_SIGNOFF_ACR.get(tier) or settings.OIDC_SIGNOFF_ACR.get("*") or []
    amr = settings.OIDC_SIGNOFF_AMR.get(tier) or settings.OIDC_SIGNOFF_AMR.get("*") or []
    return list(acr), list(amr)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@login_required
@require_POST
def signoff_start(request, pk: int):
    """The sign-off form posts here when SSO is on: keep the decision, send the reviewer to the
    provider to sign in again."""
    cr = get_object_or_404(ChangeRequest.objects.select_related("environment"), pk=pk)
    form = SignoffForm(request.POST, password=False)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("releases:signoff", pk=pk)
    acr, _ = requirement(cr.environment)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier, challenge = _pkce()
    request.session[SESSION_KEY] = {
        "change_request": cr.pk, "decision": form.cleaned_data["decision"], "comment": form.cleaned_data["comment"],
        "revision": form.cleaned_data["revision"], "started_at": time.time(), "state": state, "nonce": nonce,
        "verifier": verifier,
    }
    params = {
        "response_type": "code", "client_id": settings.OIDC_RP_CLIENT_ID, "scope": "openid",
        "redirect_uri": request.build_absolute_uri(reverse("identity:signoff_callback")),
        "state": state, "nonce": nonce, "prompt": "login", "max_age": "0",
        "code_challenge": challenge, "code_challenge_method": "S256",
    }
    if acr:
        params["acr_values"] = " ".join(acr)
    person = Person.objects.filter(user=request.user).first()
    if person and person.oidc_subject:
        params["login_hint"] = request.user.email or request.user.get_username()
    return redirect(f"{settings.OIDC_OP_AUTHORIZATION_ENDPOINT}?{urlencode(params)}")


def check_step_up(claims: dict, *, user, started_at: float, environment) -> list[str]:
    """Why the returned ID token does not carry this sign-off (empty: it does)."""
    problems = []
    person = Person.objects.filter(user=user).first()
    if person is None or not person.oidc_subject or claims.get("sub") != person.oidc_subject:
        problems.append("wrong_subject: the provider signed in someone else.")
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, (int, float)) or auth_time < int(started_at):
        problems.append("stale_authentication: the provider did not ask you to sign in again "
                        "(auth_time is before the sign-off started).")
    acr, amr = requirement(environment)
    if acr and claims.get("acr") not in acr:
        problems.append(f"weak_authentication: {environment.slug} needs acr {' or '.join(acr)}; "
                        f"the provider said {claims.get('acr') or 'nothing'}.")
    if amr and not set(claims.get("amr") or []) & set(amr):
        problems.append(f"weak_authentication: {environment.slug} needs one of the methods {', '.join(amr)}; "
                        f"the provider said {', '.join(claims.get('amr') or []) or 'nothing'}.")
    return problems


@login_required
def signoff_callback(request):
    pending = request.session.pop(SESSION_KEY, None)
    if not pending or request.GET.get("state") != pending["state"]:
        return HttpResponseBadRequest("No sign-off is waiting for this answer.")
    cr = get_object_or_404(ChangeRequest.objects.select_related("environment", "team"), pk=pending["change_request"])
    if request.GET.get("error") or not request.GET.get("code"):
        messages.error(request, f"The provider did not sign you in again ({request.GET.get('error', 'no code')}); nothing was signed.")
        return redirect("releases:signoff", pk=cr.pk)
    if time.time() - pending["started_at"] > settings.OIDC_SIGNOFF_MAX_SECONDS:
        messages.error(request, "The sign-off took too long; nothing was signed. Sign again.")
        return redirect("releases:signoff", pk=cr.pk)
    backend = ProviderBackend()
    backend.request = request
    try:
        tokens = backend.get_token({
            "client_id": settings.OIDC_RP_CLIENT_ID, "client_secret": settings.OIDC_RP_CLIENT_SECRET,
            "grant_type": "authorization_code", "code": request.GET["code"], "code_verifier": pending["verifier"],
            "redirect_uri": request.build_absolute_uri(reverse("identity:signoff_callback")),
        })
        claims = backend.verify_token(tokens.get("id_token"), nonce=pending["nonce"])
    except Exception as failure:  # any token or signature failure: nothing is signed
        logger.warning("sign-off step-up failed: %s", failure)
        messages.error(request, "The provider's answer could not be verified; nothing was signed.")
        return redirect("releases:signoff", pk=cr.pk)
    step_up = {"auth_time": claims.get("auth_time"), "acr": claims.get("acr"), "amr": claims.get("amr") or [],
               "issuer": claims.get("iss"), "subject": claims.get("sub"),
               "signoff_started_at": datetime.fromtimestamp(pending["started_at"], tz=dt_timezone.utc).isoformat()}
    problems = check_step_up(claims, user=request.user, started_at=pending["started_at"], environment=cr.environment)
    if problems:
        release_services.signoff_failed(actor=request.user, change_request=cr, reasons=problems, step_up=step_up)
        for problem in problems:
            messages.error(request, f"Sign-off refused: {problem} Nothing was signed.")
        return redirect("releases:signoff", pk=cr.pk)
    service = release_services.signoff_service(pending["decision"])
    try:
        service(actor=request.user, change_request=cr, comment=(pending["comment"] or "").strip(),
                via=Approval.Via.PORTAL, revision=pending["revision"], step_up=step_up)
    except Refused as refused:
        for reason in refused.reasons:
            messages.error(request, f"Sign-off refused: {reason.code}: {reason.message}")
        return redirect("releases:signoff", pk=cr.pk)
    messages.success(request, f"You signed CR-{cr.pk} after signing in again at the provider.")
    return redirect("releases:change_request", pk=cr.pk)
