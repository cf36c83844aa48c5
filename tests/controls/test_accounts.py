"""Accounts (RULES.md K5): each person sets their own password, through a one-time link or knowing the
current one, and both are on the chain; nobody issues keys for someone else; accounts are
deactivated, never deleted; lifting a lockout is recorded."""
import re

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from audit.models import AuditEvent
from governance import services
from governance.services import accounts
from core.errors import Denied
from tests.controls.conftest import last_event

User = get_user_model()


def reset_link(demo, client_as, person, django_capture_on_commit_callbacks) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        client_as(demo.admin).post(reverse("admin:auth_user_password_change", args=[person.pk]), {"reason": "forgot"})
    [message] = [m for m in mail.outbox if person.email in m.to]
    return re.search(r"https?://[^/]+(/accounts/reset/\S+)", message.body).group(1)


def test_the_owner_sets_their_password_through_the_link_once(demo, client_as, django_capture_on_commit_callbacks):
    path = reset_link(demo, client_as, demo.rev, django_capture_on_commit_callbacks)
    browser = client_as(None)

    form = browser.get(path, follow=True)
    done = browser.post(form.redirect_chain[-1][0], {"new_password1": "a-long-fresh-secret-9",
                                                    "new_password2": "a-long-fresh-secret-9"})
    again = client_as(None).get(path, follow=True)

    assert done.status_code == 302 and done.url == reverse("password_reset_complete")
    demo.rev.refresh_from_db()
    assert demo.rev.check_password("a-long-fresh-secret-9")
    event = last_event("account.password_set")
    assert (event.actor, event.data) == (demo.rev, {"user": "rev", "via": "reset link"})
    assert "has been used or has expired" in again.content.decode()
    assert not AuditEvent.objects.filter(action="account.changed_outside_service").exists()


def test_the_admins_own_password_change_is_recorded_as_theirs(demo, client_as):
    response = client_as(demo.admin).post("/admin/password_change/", {
        "old_password": "countersign-demo", "new_password1": "another-long-secret-4",
        "new_password2": "another-long-secret-4"})

    assert response.status_code == 302
    demo.admin.refresh_from_db()
    assert demo.admin.check_password("another-long-secret-4")
    assert last_event("account.password_set").data["via"] == "password change (current password confirmed)"
    assert not AuditEvent.objects.filter(action="account.changed_outside_service").exists()


def test_an_administrators_own_password_page_leads_to_the_change_form(demo, client_as):
    response = client_as(demo.admin).get(reverse("admin:auth_user_password_change", args=[demo.admin.pk]))

    assert (response.status_code, response.url) == (302, reverse("admin:password_change"))


def test_a_new_account_gets_no_password_and_a_link_to_set_one(demo, client_as, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(demo.admin).post(reverse("admin:auth_user_add"), {
            "username": "newdev", "email": "newdev@example.com", "first_name": "New", "_save": "Save"})

    newdev = User.objects.get(username="newdev")
    assert response.status_code == 302
    assert not newdev.has_usable_password() and not newdev.is_staff
    assert [m.to for m in mail.outbox] == [["newdev@example.com"]]
    assert last_event("account.password_reset_issued").data["reason"] == "new account"
    assert last_event("control.changed").data["after"]["username"] == "newdev"


def test_an_account_without_an_address_cannot_be_created(demo, client_as):
    response = client_as(demo.admin).post(reverse("admin:auth_user_add"), {"username": "noaddress", "_save": "Save"})

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert not User.objects.filter(username="noaddress").exists()


def test_accounts_are_deactivated_never_deleted(demo, client_as):
    client = client_as(demo.admin)

    deleted = client.post(reverse("admin:auth_user_delete", args=[demo.idev.pk]), {"post": "yes"})
    client.post(reverse("admin:auth_user_changelist"),
                {"action": "deactivate_selected", "_selected_action": [demo.idev.pk], "index": 0})

    assert deleted.status_code == 403
    demo.idev.refresh_from_db()
    assert not demo.idev.is_active
    event = last_event("control.changed")
    assert (event.data["before"]["is_active"], event.data["after"]["is_active"]) == (True, False)


def test_nobody_issues_an_api_key_for_someone_else(demo):
    with pytest.raises(Denied) as refused:
        services.api_token_create(actor=demo.admin, user=demo.dev, name="acting as dev")

    assert refused.value.codes == ["four_eyes_control"]
    assert not demo.dev.api_tokens.filter(name="acting as dev").exists()


def test_lifting_a_lockout_is_recorded_with_the_failures_it_cleared(demo, client_as):
    AccessAttempt.objects.create(username="rev", ip_address="10.0.0.9", user_agent="x", failures_since_start=5,
                                 get_data="", post_data="", http_accept="", path_info="/accounts/login/")

    client_as(demo.admin).post(reverse("admin:auth_user_changelist"),
                               {"action": "lift_lockout", "_selected_action": [demo.rev.pk], "index": 0})

    assert not AccessAttempt.objects.filter(username="rev").exists()
    event = last_event("account.lockout_reset")
    assert (event.actor, event.data["before"], event.data["after"]) == (demo.admin, {"failures": 5}, {"failures": 0})


def test_only_administrators_and_security_lift_lockouts(demo):
    with pytest.raises(Denied):
        accounts.lockout_reset(actor=demo.mgr, user=demo.rev)
