"""Freeze windows in the admin (C6): controls (RULES.md section 8). Security declares them, with their
environments, through ``control_change``; an impossible window is a form error; a window is ended
by moving its end, which weakens it, so a second person approves that."""
from datetime import timedelta

import pytest
from django.utils import timezone

from governance.models import ControlChange
from releases.models import FreezeWindow
from tests.admin_releases.shortcuts import admin_url, last_event
from tests.factories import set_control


def freeze(demo, name, starts_at, ends_at, environments):
    return set_control(by=demo.sec, control="releases.freezewindow", name=name, starts_at=starts_at, ends_at=ends_at,
                       environments=environments)


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
    event = last_event("control.changed")
    assert event.actor == demo.sec
    assert (event.data["kind"], event.data["before"]) == ("releases.freezewindow", None)
    assert event.data["after"]["environments"] == ["production", "staging"]
    assert event.data["after"]["reason"] == "Trading peak."


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


def test_ending_a_running_freeze_early_is_proposed_and_a_second_person_applies_it(demo, signed_in):
    now = timezone.now().replace(microsecond=0)
    window = freeze(demo, "Incident freeze", now - timedelta(hours=2), now + timedelta(days=2), [demo.production])

    response = signed_in(demo.admin).post(
        admin_url(FreezeWindow, "change", window.pk),
        window_form("Incident freeze", [demo.production], window.starts_at, now),
    )
    proposal = ControlChange.objects.get(kind="releases.freezewindow", status="pending")
    window.refresh_from_db()
    still_frozen = window.is_active(now)
    signed_in(demo.sec).post("/admin/governance/controlchange/",
                             {"action": "approve_selected", "_selected_action": [proposal.pk]})

    assert response.status_code == 302, response.content.decode()[:2000]
    assert still_frozen
    assert proposal.weakening[0]["field"] == "ends_at"
    window.refresh_from_db()
    assert window.ends_at == now
    assert not window.is_active(now)
    event = last_event("control.approved")
    assert (event.actor, event.data["proposed_by"]) == (demo.sec, "admin")
    assert event.data["after"]["environments"] == ["production"]
    assert window.created_by == demo.sec


def test_changing_only_the_environments_goes_through_the_service(demo, signed_in, start):
    window = freeze(demo, "Migration", start, start + timedelta(hours=4), [demo.production])

    response = signed_in(demo.sec).post(
        admin_url(FreezeWindow, "change", window.pk),
        window_form("Migration", [demo.staging, demo.production], window.starts_at, window.ends_at),
    )

    assert response.status_code == 302
    assert set(window.environments.all()) == {demo.staging, demo.production}
    event = last_event("control.changed")
    assert (event.data["changed"], event.data["after"]["environments"]) == (["environments"], ["production", "staging"])


def test_a_manager_without_security_cannot_declare_or_delete_a_freeze(demo, signed_in, start, nothing_written):
    window = freeze(demo, "Audit week", start, start + timedelta(days=5), [demo.production])
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
    window = freeze(demo, "Release train", start, start + timedelta(days=1), [demo.staging])
    client = signed_in(demo.sec)
    version = window.history.first()

    history = client.get(admin_url(FreezeWindow, "history", window.pk))
    revert = client.post(admin_url(FreezeWindow, "simple_history", window.pk, version.history_id),
                         window_form("Reverted", [demo.staging], start, start + timedelta(days=1)))

    assert history.status_code == 200
    assert "Release train" in history.content.decode()
    assert revert.status_code == 403
