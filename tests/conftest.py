from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from governance import services
from governance.models import Environment, Role, Team


@pytest.fixture
def demo(db):
    """The demo organisation of API.md: personas by name, teams, environments and roles."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    from django.contrib.auth import get_user_model

    users = {u.username: u for u in get_user_model().objects.all()}
    return SimpleNamespace(
        **users,
        payments=Team.objects.get(slug="payments"),
        identity=Team.objects.get(slug="identity"),
        development=Environment.objects.get(slug="development"),
        staging=Environment.objects.get(slug="staging"),
        production=Environment.objects.get(slug="production"),
        roles={r.slug: r for r in Role.objects.all()},
    )


@pytest.fixture
def api_as():
    """``api_as(user)`` returns an APIClient authenticated with a fresh API token of that user."""

    def make(user):
        client = APIClient()
        if user is not None:
            _, key = services.api_token_create(actor=user, user=user, name="test")
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


def _is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://... (CI's second pass does)")
    skip_redis = pytest.mark.skip(reason="needs Redis and a real worker: set CELERY_BROKER_URL=redis://...")
    for item in items:
        if "postgres" in item.keywords and not _is_postgres():
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not settings.CELERY_BROKER_URL.startswith("redis://"):
            item.add_marker(skip_redis)


@pytest.fixture
def vendor():
    return connection.vendor
