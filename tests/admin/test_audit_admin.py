"""The audit trail in the admin: readable by view_audit and security holders only, and never
writable, not even by a superuser (RULES.md V3, L2)."""
import pytest

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("persona", ["auditor", "sec", "admin"])
def test_audit_readers_see_the_trail(demo, as_user, url, persona):
    client = as_user(getattr(demo, persona))

    index = client.get(url("index"))
    changelist = client.get(url("audit_auditevent_changelist"))

    assert "Audit events" in index.content.decode()
    assert changelist.status_code == 200
    shown = list(changelist.context["cl"].result_list)
    assert shown[0] == AuditEvent.objects.order_by("-sequence").first()
    assert "role.granted" in changelist.content.decode()


def test_a_manager_without_view_audit_cannot_read_the_trail(demo, as_user, url):
    event = AuditEvent.objects.first()
    client = as_user(demo.mgr)

    assert client.get(url("audit_auditevent_changelist")).status_code == 403
    assert client.get(url("audit_auditevent_change", event.pk)).status_code == 403


def test_the_trail_filters_by_action(demo, as_user, url):
    response = as_user(demo.auditor).get(url("audit_auditevent_changelist"), {"action": "role.grant_approved"})

    actions = {event.action for event in response.context["cl"].result_list}
    assert actions == {"role.grant_approved"}


def test_an_event_page_is_read_only(demo, as_user, url):
    event = AuditEvent.objects.get(action="role.bootstrapped", data__user="sec")
    client = as_user(demo.auditor)

    page = client.get(url("audit_auditevent_change", event.pk))
    post = client.post(url("audit_auditevent_change", event.pk), {"action": "forged"})

    content = page.content.decode()
    assert page.status_code == 200
    assert event.hash in content
    assert 'name="action"' not in content
    assert post.status_code == 403


@pytest.mark.parametrize("persona", ["auditor", "admin"])
def test_nobody_adds_or_deletes_events(demo, as_user, url, persona):
    event = AuditEvent.objects.first()
    client = as_user(getattr(demo, persona))
    count = AuditEvent.objects.count()

    add = client.get(url("audit_auditevent_add"))
    delete = client.post(url("audit_auditevent_delete", event.pk), {"post": "yes"})
    bulk_delete = client.post(
        url("audit_auditevent_changelist"), {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )

    assert [add.status_code, delete.status_code] == [403, 403]
    assert bulk_delete.status_code in (200, 302)
    assert AuditEvent.objects.count() == count
