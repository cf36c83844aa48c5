"""Browser tests drive Debian's Chromium through Playwright's sync API against pytest-django's
``live_server`` (STACK.md). Without /usr/bin/chromium they are skipped, saying how to install it."""
import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"needs Chromium at {CHROMIUM}: apt-get install -y chromium")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def chromium(monkeypatch):
    """A headless Chromium. Playwright's sync API runs an event loop in the test's thread, so the
    test's own ORM calls need DJANGO_ALLOW_ASYNC_UNSAFE (only for this test, not the session)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name: str, **options) -> None:
    """The README's screenshots (docs/img/NAME.png), taken only when asked: ``make screenshots`` sets
    COUNTERSIGN_SCREENSHOTS=1. A normal test run leaves docs/img/ alone."""
    if os.environ.get("COUNTERSIGN_SCREENSHOTS"):
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, **options)
