"""Freeze windows in the admin (C6): security declares them, with their environments, through
``freeze_window_save``; an impossible window is a form error; a window ends by moving its end."""
from datetime import timedelta

import pytest
from django.utils import timezone

from releases import services
from releases.models import FreezeWindow
from tests.admin_releases.shortcuts import admin_url, last_event


def window_form(name, environments, starts_at, ends_at, reason="") -> dict:
    """What the add or change form posts: the admin splits each moment into a date and a time."""
    return {
        "name": name,
        "environments": [environment.pk for environment in environments],
        "starts_at_0": starts_at.strftime("%Y-%m-%d"),
        "starts_at_1": starts_at.strftime("%H:%M:%S"),
        "ends_at_0": ends_at.strftime("%Y-%m-%d"),
        "ends_at_1": ends_at.strftime("%H:%M:%S"),
        "reason": reason,
        "_save": "Save",
    }


@pytest.fixture
def start():
    return (timezone.now() + timedelta(days=1)).replace(microsecond=0)


def test_security_declares_a_freeze_window_for_two_environments(demo, signed_in, start):
    response = signed_in(demo.sec).post(
        admin_url(FreezeWindow, "add"),
        window_form("Year-end freeze", [demo.staging, demo.production], start, start + timedelta(days=3),
                    reason="Trading peak."),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    window = FreezeWindow.objects.get(name="Year-end freeze")
    assert set(window.environments.all()) == {demo.staging, demo.production}
    assert (window.starts_at, window.ends_at) == (start, start + timedelta(days=3))
    assert window.created_by == demo.sec
    event = last_event("freeze_window.created")
    assert event.actor == demo.sec
    assert event.data["environments"] == ["production", "staging"]
    assert event.data["reason"] == "Trading peak."


def test_a_window_that_ends_before_it_starts_is_a_form_error(demo, signed_in, start, nothing_written):
    with nothing_written():
        response = signed_in(demo.sec).post(
            admin_url(FreezeWindow, "add"),
            window_form("Backwards", [demo.production], start, start - timedelta(hours=1)),
        )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["ends_at"] == ["A freeze window ends after it starts."]
    assert not FreezeWindow.objects.filter(name="Backwards").exists()


def test_security_ends_a_running_freeze_by_moving_its_end(demo, signed_in):
    now = timezone.now().replace(microsecond=0)
    window = services.freeze_window_save(
        actor=demo.sec, window=FreezeWindow(name="Incident freeze", starts_at=now - timedelta(hours=2),
                                            ends_at=now + timedelta(days=2)),
        environments=[demo.production],
    )

    response = signed_in(demo.sec).post(
        admin_url(FreezeWindow, "change", window.pk),
        window_form("Incident freeze", [demo.production], window.starts_at, now),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    window.refresh_from_db()
    assert window.ends_at == now
    assert not window.is_active(now)
    event = last_event("freeze_window.updated")
    assert event.actor == demo.sec
    assert event.data["environments"] == ["production"]
    assert window.created_by == demo.sec


def test_changing_only_the_environments_goes_through_the_service(demo, signed_in, start):
    window = services.freeze_window_save(
        actor=demo.sec, window=FreezeWindow(name="Migration", starts_at=start, ends_at=start + timedelta(hours=4)),
        environments=[demo.production],
    )

    response = signed_in(demo.sec).post(
        admin_url(FreezeWindow, "change", window.pk),
        window_form("Migration", [demo.staging, demo.production], window.starts_at, window.ends_at),
    )

    assert response.status_code == 302
    assert set(window.environments.all()) == {demo.staging, demo.production}
    assert last_event("freeze_window.updated").data["environments"] == ["production", "staging"]


def test_a_manager_without_security_cannot_declare_or_delete_a_freeze(demo, signed_in, start, nothing_written):
    window = services.freeze_window_save(
        actor=demo.sec, window=FreezeWindow(name="Audit week", starts_at=start, ends_at=start + timedelta(days=5)),
        environments=[demo.production],
    )
    client = signed_in(demo.mgr)

    with nothing_written():
        added = client.post(admin_url(FreezeWindow, "add"),
                            window_form("Mine", [demo.production], start, start + timedelta(days=1)))
        changed = client.post(admin_url(FreezeWindow, "change", window.pk),
                              window_form("Audit week", [demo.production], start, start + timedelta(hours=1)))
        deleted = client.post(admin_url(FreezeWindow, "delete", window.pk), {"post": "yes"})

    assert (added.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    assert client.get(admin_url(FreezeWindow, "changelist")).status_code == 200


def test_the_history_of_a_freeze_window_renders_without_revert(demo, signed_in, start):
    window = services.freeze_window_save(
        actor=demo.sec, window=FreezeWindow(name="Release train", starts_at=start, ends_at=start + timedelta(days=1)),
        environments=[demo.staging],
    )
    client = signed_in(demo.sec)
    version = window.history.first()

    history = client.get(admin_url(FreezeWindow, "history", window.pk))
    revert = client.post(admin_url(FreezeWindow, "simple_history", window.pk, version.history_id),
                         window_form("Reverted", [demo.staging], start, start + timedelta(days=1)))

    assert history.status_code == 200
    assert "Release train" in history.content.decode()
    assert revert.status_code == 403
