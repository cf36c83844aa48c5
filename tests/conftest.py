import os
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import call_command
from django.forms import ModelMultipleChoiceField, MultipleChoiceField
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.test import Client
from rest_framework.test import APIClient

from governance import services
from governance.models import Environment, Role, Team


@pytest.fixture(scope="module")
def seeded_demo(django_db_setup, django_db_blocker):
    """``seed_demo`` once per test module, inside a transaction rolled back after the module.

    Seeding costs about a second and most stories start from the demo. Each test still runs in
    its own savepoint (the ``db`` fixture nests inside this transaction), so no test sees
    another's writes, and the database is left empty for the next module."""
    with django_db_blocker.unblock():
        name = str(connection.settings_dict["NAME"])
        assert name.startswith("test_") or "memorydb" in name, f"refusing to seed {name}: not a test database"
        seeded = transaction.atomic()
        seeded.__enter__()
        try:
            call_command("seed_demo", stdout=open(os.devnull, "w"))
        except BaseException as exc:
            seeded.__exit__(type(exc), exc, exc.__traceback__)
            raise
    yield
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        seeded.__exit__(None, None, None)


@pytest.fixture
def demo(request):
    """The demo organisation of API.md: personas by name, teams, environments and roles, read
    afresh for every test so no test inherits another's in-memory instances.

    Transactional tests (threads, live servers, real workers need committed rows) seed for real;
    every other test shares its module's rolled-back seed."""
    if _marked_transactional(request.node):
        request.getfixturevalue("transactional_db")
        call_command("seed_demo", stdout=open(os.devnull, "w"))
    else:
        request.getfixturevalue("seeded_demo")
        request.getfixturevalue("db")
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
def client_as():
    """``client_as(user)`` is a test client logged in as ``user`` (``None``: anonymous)."""

    def make(user):
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def messages_in():
    """``messages_in(response)``: the texts of the messages the response's request left."""

    def read(response) -> list[str]:
        return [str(message) for message in get_messages(response.wsgi_request)]

    return read


@pytest.fixture
def form_data():
    """POST data that re-submits an admin change page as rendered: the main form's values and every
    inline formset (management form included). Edit the dict, then post it."""

    def build(response) -> dict:
        data = {"_save": "Save"}

        def add(form):
            for name in form.fields:
                value = form[name].value()
                if isinstance(value, bool):
                    if value:
                        data[form.add_prefix(name)] = "on"
                elif isinstance(form.fields[name], (MultipleChoiceField, ModelMultipleChoiceField)):
                    data[form.add_prefix(name)] = list(value or [])  # a browser sends nothing for none
                else:
                    data[form.add_prefix(name)] = "" if value is None else value

        add(response.context["adminform"].form)
        for inline in response.context["inline_admin_formsets"]:
            add(inline.formset.management_form)
            for form in inline.formset.forms:
                add(form)
        return data

    return build


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


def _marked_transactional(item) -> bool:
    marker = item.get_closest_marker("django_db")
    return bool(marker and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(item.fixturenames)
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        # The module's seed must open before the test's own transaction (which a module-level
        # ``django_db`` mark starts first): otherwise it would nest inside, and be rolled back
        # with, the first test that asked for it.
        # ``db`` is declared too, because pytest-django creates the test database only for tests
        # that declare a database fixture or mark.
        if "demo" in item.fixturenames and not _marked_transactional(item):
            item.fixturenames[:0] = ["seeded_demo", "db"]
    # The long files first (the sweeps, the browser tests, the drills): pytest-xdist's ``--dist
    # loadfile`` hands whole files to whichever worker is free, in this order, so a long file handed
    # out last kept one worker busy for minutes while the other had nothing left. Stable: every
    # file's tests stay together and in their order.
    long_files = {item.path for item in items if {"sweep", "browser", "resilience"} & set(item.keywords)}
    items.sort(key=lambda item: item.path not in long_files)
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
