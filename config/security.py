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

Swagger UI at /api/docs/ (served only when settings.API_DOCS is on) is the one exception: it
loads its bundle from a pinned CDN release, so that path also allows that host.
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
API_DOCS_PATH = "/api/docs/"


def _policy(directives: dict) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def _docs_policy() -> str:
    cdn = settings.SPECTACULAR_SETTINGS["SWAGGER_UI_DIST"].split("/npm/")[0]
    return _policy({
        **CSP,
        "script-src": f"'self' {cdn}",
        "style-src": f"'self' 'unsafe-inline' {cdn}",
        "img-src": f"'self' data: {cdn}",
    })


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
        self.docs_policy = _docs_policy()

    def __call__(self, request):
        response = self.get_response(request)
        policy = self.docs_policy if request.path.startswith(API_DOCS_PATH) else default_policy()
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
