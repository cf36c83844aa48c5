"""Swagger UI at /api/docs/ works offline: the page, its start-up script and the files they load
come from our own origin (drf-spectacular-sidecar), so it is on by default."""
import re

from django.contrib.staticfiles import finders
from django.test import Client

URL = re.compile(r"""(?:src|href)=["']([^"']+)["']|(?:url|import)\(\s*["']?([^"')]+)""")
ABSOLUTE = re.compile(r"""["'`](?:https?:)?//[a-z0-9.-]+""", re.IGNORECASE)


def _references(text: str) -> list[str]:
    return [a or b for a, b in URL.findall(text)]


def test_the_docs_page_and_its_script_reference_no_other_host(db):
    page = Client().get("/api/docs/")
    script = Client().get("/api/docs/?script=")
    assert page.status_code == 200 and script.status_code == 200

    html = page.content.decode()
    references = _references(html)
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in references), references
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in references), references
    assert not ABSOLUTE.search(script.content.decode()), "the start-up script names another host"


def test_the_files_it_loads_are_our_static_files(db):
    html = Client().get("/api/docs/").content.decode()
    static = [ref for ref in _references(html) if ref.startswith("/static/")]
    assert {ref.rsplit("/", 1)[-1] for ref in static} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for ref in static:
        assert finders.find(ref.removeprefix("/static/").split("?")[0]), f"{ref} is not one of our static files"
