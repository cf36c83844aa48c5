"""DRF throttling for API clients (issue 7.3): per user for tokens, per address for anonymous
callers, 429 with {detail} and Retry-After. The suite runs with throttles off (conftest.py); these
tests turn them on with tiny rates and an empty cache."""
import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

TEAMS = "/api/v1/teams/"


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def test_a_token_client_over_its_rate_gets_429_with_retry_after(demo, api_as, settings):
    settings.COUNTERSIGN_THROTTLE_RATES = {"user": "3/min", "anon": None}
    dev = api_as(demo.dev)

    statuses = [dev.get(TEAMS).status_code for _ in range(3)]
    throttled = dev.get(TEAMS)

    assert statuses == [200, 200, 200]
    assert throttled.status_code == 429
    assert set(throttled.json()) == {"detail"} and "throttled" in throttled.json()["detail"]
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert api_as(demo.rev).get(TEAMS).status_code == 200  # counted per user, not globally


def test_anonymous_callers_are_limited_per_address(db, settings):
    settings.COUNTERSIGN_THROTTLE_RATES = {"user": None, "anon": "2/min"}

    statuses = [APIClient(REMOTE_ADDR="10.1.1.1").get("/api/schema/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert APIClient(REMOTE_ADDR="10.1.1.2").get("/api/schema/").status_code == 200


def test_a_rate_of_none_switches_the_throttle_off(demo, api_as, settings):
    settings.COUNTERSIGN_THROTTLE_RATES = {"user": None, "anon": None}
    dev = api_as(demo.dev)

    assert {dev.get(TEAMS).status_code for _ in range(10)} == {200}
