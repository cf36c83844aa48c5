"""Security headers (issue 7.3) on a portal page, the admin login and an API response, and the
Content-Security-Policy's promise that no template runs inline script."""
import re
from pathlib import Path

from django.conf import settings
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def directives(response) -> dict:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


def assert_hardened(response):
    csp = directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no other host
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]


def test_a_portal_page(demo):
    client = Client()
    client.force_login(demo.dev)

    response = client.get("/")

    assert response.status_code == 200
    assert_hardened(response)


def test_the_login_and_admin_login_pages(db):
    for path in ("/accounts/login/", "/admin/login/"):
        response = Client().get(path)
        assert response.status_code == 200, path
        assert_hardened(response)


def test_an_api_response(demo, api_as):
    response = api_as(demo.dev).get("/api/v1/teams/")

    assert response.status_code == 200
    assert_hardened(response)


def test_swagger_ui_needs_no_exception_and_runs_no_inline_script(db):
    assert settings.API_DOCS, "/api/docs/ is served by default"
    page = Client().get("/api/docs/")
    script = Client().get("/api/docs/?script=")

    assert page.status_code == 200 and script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert directives(page)["script-src"] == ["'self'"]  # its bundle is our own static files
    assert not re.search(rb"<script(?![^>]*\bsrc=)[^>]*>", page.content)


def test_production_sends_hsts(settings, db):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True

    response = Client().get("/accounts/login/", secure=True)

    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
JS_URL = re.compile(r"(href|src|action)\s*=\s*[\"']?\s*javascript:", re.IGNORECASE)


def test_no_template_has_inline_script_or_event_handlers():
    """Our CSP would block them anyway; this keeps the templates honest instead of broken."""
    templates = [p for base in (ROOT / "templates", *ROOT.glob("*/templates")) for p in base.rglob("*.html")]
    assert len(templates) > 10
    offenders = [
        f"{path.relative_to(ROOT)}: {pattern.pattern}"
        for path in templates
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, JS_URL)
        if pattern.search(path.read_text())
    ]
    assert offenders == []
