"""Change requests in the admin: read-only records shown to whoever V1 lets see them (V4), with
their approvals, deployments and history; nothing here moves a change between states except the
cancel action, which is ``change_request_cancel`` deciding each change."""
import pytest
from django.urls import reverse

from governance import services as governance_services
from releases import services
from releases.demo import MARKER
from releases.models import ChangeRequest
from tests.admin_releases.shortcuts import admin_url, last_event, page_messages

CHANGELIST = admin_url(ChangeRequest, "changelist")


def change(title, environment) -> ChangeRequest:
    return ChangeRequest.objects.get(title=title, environment=environment)


def listed(response) -> set[int]:
    return {cr.pk for cr in response.context["cl"].result_list}


@pytest.fixture
def identity_change(demo):
    """A change of the identity team, which payments' people have no business seeing."""
    return services.change_request_create(
        actor=demo.idev, team=demo.identity, environment=demo.development, title="Rotate session keys",
        artifact="identity-api:4.2.0",
    )


@pytest.fixture
def idev_staff(demo):
    demo.idev.is_staff = True
    demo.idev.save(update_fields=["is_staff"])
    return demo.idev


def test_the_auditor_lists_every_change(demo, signed_in, identity_change):
    response = signed_in(demo.auditor).get(CHANGELIST)

    assert response.status_code == 200
    assert listed(response) == set(ChangeRequest.objects.values_list("pk", flat=True))
    assert identity_change.pk in listed(response)


def test_the_changelist_filters_and_searches(demo, signed_in):
    client = signed_in(demo.auditor)

    production = client.get(CHANGELIST, {"environment__id__exact": demo.production.pk, "state__exact": "pending"})
    by_author = client.get(CHANGELIST, {"q": "dev2"})
    by_artifact = client.get(CHANGELIST, {"q": "payments-webhooks"})

    assert listed(production) == {change(MARKER, demo.production).pk}
    assert listed(by_author) == set(ChangeRequest.objects.filter(author=demo.dev2).values_list("pk", flat=True))
    assert {ChangeRequest.objects.get(pk=pk).title for pk in listed(by_artifact)} == {"Rotate webhook signing secret"}


def test_the_auditor_reads_a_change_with_its_approvals_and_no_editable_field(demo, signed_in):
    staged = change(MARKER, demo.staging)

    response = signed_in(demo.auditor).get(admin_url(ChangeRequest, "change", staged.pk))

    page = response.content.decode()
    assert response.status_code == 200
    assert "deployed" in page
    assert "Looks good; retry is idempotent." in page
    assert 'name="state"' not in page
    assert 'name="title"' not in page
    assert 'name="_save"' not in page


def test_posting_the_change_form_is_refused(demo, signed_in, nothing_written):
    pending = change(MARKER, demo.production)

    with nothing_written():
        response = signed_in(demo.admin).post(
            admin_url(ChangeRequest, "change", pending.pk), {"state": "approved", "title": "Forced", "_save": "Save"}
        )

    assert response.status_code == 403


def test_nobody_adds_or_deletes_a_change_here(demo, signed_in, nothing_written):
    draft = change("Upgrade TLS library", demo.development)
    client = signed_in(demo.admin)

    with nothing_written():
        added = client.post(admin_url(ChangeRequest, "add"), {"title": "Sneaky", "_save": "Save"})
        deleted = client.post(admin_url(ChangeRequest, "delete", draft.pk), {"post": "yes"})

    assert (added.status_code, deleted.status_code) == (403, 403)


def test_identity_staff_do_not_see_payments_changes(demo, signed_in, idev_staff, identity_change):
    payments_change = change(MARKER, demo.production)
    client = signed_in(idev_staff)

    changelist = client.get(CHANGELIST)
    detail = client.get(admin_url(ChangeRequest, "change", payments_change.pk))
    history = client.get(admin_url(ChangeRequest, "history", payments_change.pk))
    version = client.get(admin_url(ChangeRequest, "simple_history", payments_change.pk,
                                   payments_change.history.first().history_id))

    assert listed(changelist) == {identity_change.pk}
    assert detail.status_code == 302  # the admin's "does not exist, perhaps it was deleted?"
    assert (history.status_code, version.status_code) == (404, 404)
    assert client.get(admin_url(ChangeRequest, "change", identity_change.pk)).status_code == 200


@pytest.mark.parametrize("persona", ["sec", "mgr", "auditor", "admin"])
def test_staff_who_see_changes_find_releases_on_the_admin_index(demo, signed_in, persona):
    response = signed_in(getattr(demo, persona)).get(reverse("admin:index"))

    models = {model["object_name"] for app in response.context["app_list"] if app["app_label"] == "releases"
              for model in app["models"]}
    assert models == {"ApprovalPolicy", "FreezeWindow", "StandardChangeTemplate", "ChangeRequest", "Deployment"}


def test_staff_without_a_team_or_audit_duty_have_no_releases_admin(demo, signed_in, django_user_model):
    outsider = governance_services.user_provision(username="outsider", password="x", is_staff=True, source="tests")

    assert signed_in(outsider).get(CHANGELIST).status_code == 403


def test_the_history_of_a_change_renders(demo, signed_in):
    staged = change(MARKER, demo.staging)

    response = signed_in(demo.auditor).get(admin_url(ChangeRequest, "history", staged.pk))

    assert response.status_code == 200
    assert response.context["page_obj"].paginator.count == staged.history.count() > 1


def test_the_superuser_sees_every_team_but_gets_no_bypass(demo, signed_in, identity_change, nothing_written):
    pending = change(MARKER, demo.production)
    client = signed_in(demo.admin)

    assert listed(client.get(CHANGELIST)) == set(ChangeRequest.objects.values_list("pk", flat=True))
    with nothing_written():
        response = client.post(CHANGELIST, {"action": "cancel_selected", "_selected_action": [pending.pk],
                                            "reason": "Tidying up."}, follow=True)

    assert page_messages(response) == [
        f"{pending}: not cancelled. not_author: Only the author or a manager of the team cancels a change request."
    ]


# --- The cancel action -----------------------------------------------------------------------------


def cancel(client, changes, reason):
    return client.post(
        CHANGELIST, {"action": "cancel_selected", "_selected_action": [cr.pk for cr in changes], "reason": reason},
        follow=True,
    )


def test_the_team_manager_cancels_a_pending_change_with_a_reason(demo, signed_in):
    pending = change(MARKER, demo.production)

    response = cancel(signed_in(demo.mgr), [pending], "Superseded by PAY-102.")

    pending.refresh_from_db()
    assert pending.state == ChangeRequest.State.CANCELLED
    assert pending.close_reason == "Superseded by PAY-102."
    event = last_event("change_request.cancelled")
    assert event.actor == demo.mgr
    assert (event.data["reason"], event.data["from_state"]) == ("Superseded by PAY-102.", "pending")
    assert page_messages(response) == [f"{pending}: cancelled."]


def test_each_refusal_is_reported_and_the_others_still_cancel(demo, signed_in):
    pending = change(MARKER, demo.production)
    deployed = change(MARKER, demo.staging)

    response = cancel(signed_in(demo.mgr), [pending, deployed], "Superseded by PAY-102.")

    assert ChangeRequest.objects.get(pk=pending.pk).state == ChangeRequest.State.CANCELLED
    assert ChangeRequest.objects.get(pk=deployed.pk).state == ChangeRequest.State.DEPLOYED
    assert set(page_messages(response)) == {
        f"{pending}: cancelled.",
        f"{deployed}: not cancelled. invalid_state: A deployed change request does not allow cancel.",
    }


def test_cancelling_without_a_reason_changes_nothing(demo, signed_in, nothing_written):
    pending = change(MARKER, demo.production)

    with nothing_written():
        response = cancel(signed_in(demo.mgr), [pending], "  ")

    assert page_messages(response) == [f"{pending}: not cancelled. reason: Say why the change is cancelled."]


def test_a_manager_of_another_team_may_not_cancel(demo, signed_in, nothing_written):
    """mgr manages payments only: managing one team does not open another's changes to cancel."""
    governance_services.membership_set(actor=demo.admin, team=demo.identity, user=demo.mgr)
    idev_change = services.change_request_create(
        actor=demo.idev, team=demo.identity, environment=demo.development, title="Identity tweak", artifact="id:1",
    )

    with nothing_written():
        response = cancel(signed_in(demo.mgr), [idev_change], "Not ours, but tidy.")

    assert page_messages(response) == [
        f"{idev_change}: not cancelled. not_author: Only the author or a manager of the team cancels a change request."
    ]


def test_the_auditor_is_not_offered_the_cancel_action(demo, signed_in, nothing_written):
    pending = change(MARKER, demo.production)
    client = signed_in(demo.auditor)

    with nothing_written():
        response = cancel(client, [pending], "Auditors do not cancel.")

    assert response.status_code == 200
    assert "cancel_selected" not in response.content.decode()
    assert page_messages(response) == []
