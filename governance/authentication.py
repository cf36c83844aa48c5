import hashlib

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from governance.models import ApiToken
from governance.services import api_token_touch


REFUSAL = "Invalid, expired or revoked token."


class ApiTokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``; keys are looked up by their SHA-256, never stored in clear."""

    keyword = "Token"

    def authenticate_credentials(self, key):
        digest = hashlib.sha256(key.encode()).hexdigest()
        token = ApiToken.objects.select_related("user").filter(key_hash=digest).first()
        now = timezone.now()
        # One answer for every refusal: a caller learns nothing about which keys or users exist.
        if token is None or not token.is_usable(now) or not token.user.is_active:
            raise exceptions.AuthenticationFailed(REFUSAL)
        api_token_touch(token, at=now)
        return token.user, token


class CsrfFailed(exceptions.PermissionDenied):
    """A session request without a valid CSRF token: refused with its own reason code, not with
    ``missing_duty`` (the caller may well hold the duty; the request is what is wrong)."""

    reason_code = "csrf_failed"


class SessionAuthentication(authentication.SessionAuthentication):
    """The browser's session cookie, CSRF-checked as DRF does, refusing with ``csrf_failed``."""

    def enforce_csrf(self, request):
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as refusal:
            raise CsrfFailed(refusal.detail) from None


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "governance.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The header's value is `Token <key>` (the word Token, a space, the key), not "
            "`Bearer`; create a key with `manage.py create_api_token USERNAME`. A client generated with "
            "openapi-python-client: `AuthenticatedClient(base_url=..., token=key, prefix=\"Token\")` "
            "(docs/api-clients.md).",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    """drf-spectacular describes DRF's own session class only; this one is the same cookie."""

    target_class = "governance.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
