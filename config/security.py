"""Security headers Django 5.2 does not set itself (docs/security.md, "Hardening").

Django's SecurityMiddleware already sends HSTS (production), X-Content-Type-Options,
Referrer-Policy and Cross-Origin-Opener-Policy, and XFrameOptionsMiddleware sends
X-Frame-Options: DENY. This adds:

- Content-Security-Policy with no inline script anywhere: every script is a file from our own
  origin (static/js/). Inline *styles* stay allowed: third-party admin pages (django-guardian,
  django-simple-history, DRF's browsable API) use style attributes, and a style cannot run code.
  ``frame-ancestors 'none'`` repeats the frame denial for browsers that follow CSP only.
- Permissions-Policy switching off browser features the portal never uses.
- Cross-Origin-Resource-Policy: our responses are not for other sites to embed.

Swagger UI at /api/docs/ needs no exception: its bundle is our own static files
(drf-spectacular-sidecar) and its start-up script a file from our origin.
"""
from django.conf import settings

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()" for feature in
    ("accelerometer", "camera", "geolocation", "gyroscope", "magnetometer", "microphone", "payment", "usb")
)


def _policy(directives: dict) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def _provider_origin() -> str:
    """With single sign-on, the sign-off form's redirect goes to the provider (form-action)."""
    from urllib.parse import urlsplit

    if not settings.OIDC_ENABLED:
        return ""
    url = urlsplit(settings.OIDC_OP_AUTHORIZATION_ENDPOINT)
    return f"{url.scheme}://{url.netloc}" if url.scheme and url.netloc else ""


def default_policy() -> str:
    return _policy({**CSP, "form-action": f"'self' {_provider_origin()}".strip()})


DEFAULT_POLICY = _policy(CSP)


class SecurityHeadersMiddleware:
    """Sets the headers unless a view already chose its own value."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", default_policy())
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
