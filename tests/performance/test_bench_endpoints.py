"""The floors ``make bench`` measures against: mounted only when the setting says so, behind the
same authentication as the API and the portal, and doing the one thing each claims."""
import pytest
from django.contrib.sessions.models import Session
from django.urls import Resolver404, resolve
from django.utils import timezone

from releases.models import ChangeRequest
from tests.factories import UserFactory


def test_the_floors_are_not_served_by_default(settings):
    assert settings.COUNTERSIGN_BENCH_ENDPOINTS is False
    with pytest.raises(Resolver404):
        resolve("/bench/row/1/")


@pytest.mark.urls("tests.performance.bench_urls")
def test_the_row_floor_returns_one_change_to_an_authenticated_caller(demo, api_as, client):
    change = ChangeRequest.objects.order_by("pk").first()
    assert client.get(f"/bench/row/{change.pk}/").status_code in (401, 403)
    answer = api_as(demo.ops).get(f"/bench/row/{change.pk}/")
    assert answer.status_code == 200
    assert answer.json()["id"] == change.pk and answer.json()["title"] == change.title
    assert api_as(demo.ops).get("/bench/row/999999/").status_code == 404


@pytest.mark.urls("tests.performance.bench_urls")
def test_the_insert_floor_writes_one_expired_session_row(demo, api_as):
    before = Session.objects.count()
    assert api_as(demo.ops).post("/bench/insert/").status_code == 201
    assert Session.objects.count() == before + 1
    assert Session.objects.filter(session_key__startswith="bench").get().expire_date < timezone.now()


@pytest.mark.urls("tests.performance.bench_urls")
def test_the_page_floors_render_the_rows_for_a_signed_in_member(demo, client):
    change = ChangeRequest.objects.filter(team=demo.payments).order_by("-created_at", "-id").first()
    assert client.get("/bench/dashboard/").status_code == 302  # login required, like the portal
    client.force_login(demo.rev)
    page = client.get("/bench/dashboard/")
    assert page.status_code == 200 and f"CR-{change.pk}" in page.content.decode()
    assert [cr.pk for cr in page.context["rows"]] == list(
        ChangeRequest.objects.filter(team=demo.payments).order_by("-created_at", "-id").values_list("pk", flat=True)
    )
    detail = client.get(f"/bench/changes/{change.pk}/")
    assert detail.status_code == 200 and change.title in detail.content.decode()
    outsider = UserFactory(username="outsider")
    client.force_login(outsider)
    assert client.get("/bench/dashboard/").context["rows"] == []
