"""Error pages of our own for 400, 403, 404 and 500, in the portal's layout, whether DEBUG is on
(``make run``'s demo) or off; the API keeps its JSON shape. Django's technical pages (the 404 that
lists every URL pattern, the 500 with the traceback and settings) are never what a newcomer sees."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
# What only Django's technical 404 and 500 pages say.
TECHNICAL = (
    "Using the URLconf defined in",
    "You’re seeing this error because you have",
    "You're seeing this error because you have",
    "Django tried these URL patterns",
    "Traceback",
    "Request Method:",
)


def assert_ours(response, status, heading):
    body = response.content.decode()
    assert response.status_code == status, body[:300]
    assert response["Content-Type"].startswith("text/html")
    for marker in TECHNICAL:
        assert marker not in body, f"Django's technical page ({marker!r})"
    assert heading in body
    assert 'class="topbar"' in body and "countersign.css" in body  # the portal's layout


def test_the_demo_settings_never_serve_the_technical_pages(tmp_path):
    """``make run``'s settings: no environment at all, so DEBUG is on. A path no route matches, and
    a view that fails, answer with our pages; nothing here needs the database."""
    script = (
        "import json; import django; django.setup()\n"
        "from django.conf import settings; from django.test import Client\n"
        "from django.contrib.auth import views\n"
        "def fail(*args, **kwargs): raise RuntimeError('a bug')\n"
        "views.LoginView.get = fail\n"
        "client = Client(raise_request_exception=False, HTTP_HOST='127.0.0.1')\n"
        "pages = {path: client.get(path) for path in ('/no/such/page/', '/accounts/login/', '/api/v1/no-such/')}\n"
        "print(json.dumps({'debug': settings.DEBUG, 'pages': {path: [r.status_code, r['Content-Type'],"
        " r.content.decode()] for path, r in pages.items()}}))\n"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DJANGO_SETTINGS_MODULE": "config.settings",
           "COUNTERSIGN_VAR_DIR": str(tmp_path / "var")}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)

    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["debug"] is True
    pages = facts["pages"]
    for path, (_, _, body) in pages.items():
        for marker in TECHNICAL:
            assert marker not in body, f"{path}: Django's technical page ({marker!r})"
    assert pages["/no/such/page/"][0] == 404 and "There is nothing here you can see" in pages["/no/such/page/"][2]
    assert pages["/accounts/login/"][0] == 500 and "Something went wrong on our side" in pages["/accounts/login/"][2]
    assert pages["/api/v1/no-such/"][:2] == [404, "application/json"]
    assert "RuntimeError" in result.stderr  # the traceback still reaches the developer's console


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


pytestmark = pytest.mark.urls("tests.portal.error_urls")


def test_a_path_no_route_matches(debug, db):
    assert_ours(Client().get("/no/such/page/"), 404, "There is nothing here you can see")


def test_a_change_one_may_not_see(debug, demo, client_as):
    assert_ours(client_as(demo.idev).get("/changes/999999/"), 404, "There is nothing here you can see")


def test_an_admin_page_that_does_not_exist(debug, demo, client_as):
    assert_ours(client_as(demo.admin).get("/admin/releases/no-such-model/"), 404, "There is nothing here")


def test_a_view_that_fails(debug, db):
    assert_ours(Client(raise_request_exception=False).get("/boom/"), 500, "Something went wrong on our side")


def test_a_middleware_that_fails(debug, db, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.portal.error_urls.ExplodingMiddleware"]
    response = Client(raise_request_exception=False).get("/accounts/login/", headers={"X-Explode": "1"})
    assert_ours(response, 500, "Something went wrong on our side")


def test_a_bad_request(debug, db):
    assert_ours(Client(raise_request_exception=False).get("/suspicious/"), 400, "That request could not be read")


def test_a_refusal(debug, demo, client_as):
    assert_ours(client_as(demo.dev).get("/forbidden/"), 403, "You are not allowed to do that")


def test_a_form_whose_token_expired(debug, db):
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "dev", "password": "x"})
    assert_ours(response, 403, "This form has expired")


def test_the_api_keeps_its_json(debug, demo, api_as):
    missing = Client().get("/api/v1/no-such/")
    failing = Client(raise_request_exception=False).get("/api/v1/boom/")
    forbidden = api_as(demo.dev).get("/api/v1/no-such-either/")

    assert missing.status_code == 404 and missing.json() == {"detail": "Not found."}
    assert failing.status_code == 500 and failing["Content-Type"] == "application/json"
    assert "detail" in failing.json() and "RuntimeError" not in failing.content.decode()
    assert forbidden.status_code == 404


def test_a_developer_may_ask_for_the_technical_pages(settings, db):
    settings.DEBUG = True
    settings.COUNTERSIGN_TECHNICAL_ERROR_PAGES = True
    assert "Using the URLconf defined in" in Client().get("/no/such/page/").content.decode()
