"""``manage.py create_api_token USERNAME [--expires-days N] [--name NAME]`` prints a working key once."""
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import ApiToken


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_only_a_key_that_works(demo):
    out, err = run("ops", "--name", "deploy pipeline")
    key = out.strip()
    assert "\n" not in key and key.startswith("cs_")
    assert key not in err and "cannot be shown again" in err
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/v1/role-assignments/")
    assert response.status_code == 200
    assert {row["user"] for row in response.json()["results"]} == {"ops"}
    token = ApiToken.objects.get(user=demo.ops)
    assert token.name == "deploy pipeline"


def test_expiry_is_taken_from_the_option(demo, settings):
    run("dev", "--expires-days", "3")
    run("dev2")
    expected = {"dev": timedelta(days=3), "dev2": timedelta(days=settings.COUNTERSIGN_API_TOKEN_DEFAULT_DAYS)}
    for token in ApiToken.objects.filter(user__username__in=expected):
        assert abs(token.expires_at - timezone.now() - expected[token.user.username]) < timedelta(minutes=1)


@pytest.mark.parametrize(
    "args, message",
    [
        (["nobody"], "No user is named nobody"),
        (["dev", "--expires-days", "0"], "at least one day"),
    ],
)
def test_refuses_without_writing(demo, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not ApiToken.objects.exists()


def test_refuses_a_disabled_account(demo):
    demo.dev.is_active = False
    demo.dev.save(update_fields=["is_active"])
    with pytest.raises(CommandError, match="disabled"):
        run("dev")
    assert not ApiToken.objects.exists()
