"""Approval policies in the admin: controls (RULES.md section 8). Security and superusers change them
through ``control_change`` (on the chain, with before and after); a weakening change waits for a
second person; nobody else changes one, and nobody deletes one."""
from governance.controls.admin import ControlForm
from governance.models import ControlChange
from releases.models import ApprovalPolicy
from tests.admin_releases.shortcuts import admin_url, last_event, page_messages, posted
from tests.factories import UserFactory, bootstrap_grant


def production_policy(demo) -> ApprovalPolicy:
    return ApprovalPolicy.objects.get(environment=demo.production)


def test_security_raises_the_production_policy_through_the_service(demo, signed_in):
    policy = production_policy(demo)

    response = signed_in(demo.sec).post(
        admin_url(ApprovalPolicy, "change", policy.pk), posted(policy, min_approvals=3, min_security_approvals=1)
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert (policy.min_approvals, policy.min_security_approvals) == (3, 1)
    event = last_event("control.changed")
    assert event.actor == demo.sec
    assert event.environment == "production"
    assert event.data["changed"] == ["min_approvals", "min_security_approvals"]
    assert (event.data["before"]["min_approvals"], event.data["after"]["min_approvals"]) == (2, 3)
    assert policy.history.first().history_user == demo.sec


def test_lowering_the_production_policy_waits_for_a_second_person_with_security_there(demo, signed_in):
    policy = production_policy(demo)
    sec2 = UserFactory(username="sec2", is_staff=True)
    bootstrap_grant(sec2, "security", demo.payments, demo.production)

    response = signed_in(demo.sec).post(admin_url(ApprovalPolicy, "change", policy.pk), posted(policy, min_approvals=1))
    proposal = ControlChange.objects.get(kind="releases.approvalpolicy", status="pending")
    held = ApprovalPolicy.objects.get(pk=policy.pk).min_approvals
    by_admin = signed_in(demo.admin).post(
        "/admin/governance/controlchange/", {"action": "approve_selected", "_selected_action": [proposal.pk]})
    after_admin = ApprovalPolicy.objects.get(pk=policy.pk).min_approvals
    signed_in(sec2).post(
        "/admin/governance/controlchange/", {"action": "approve_selected", "_selected_action": [proposal.pk]})

    assert response.status_code == 302
    assert response.url == f"/admin/governance/controlchange/{proposal.pk}/change/"
    assert "waits for a second person" in " ".join(page_messages(response))
    assert (held, after_admin) == (2, 2)
    assert proposal.weakening == [{"field": "min_approvals", "message": "approvals required from 2 to 1"}]
    assert "missing_duty: Deciding this change needs security_approve for production." in " ".join(
        page_messages(by_admin))
    policy.refresh_from_db()
    assert policy.min_approvals == 1
    event = last_event("control.approved")
    assert (event.actor, event.data["proposed_by"]) == (sec2, "sec")
    assert (event.data["before"]["min_approvals"], event.data["after"]["min_approvals"]) == (2, 1)


def test_saving_an_unchanged_policy_records_nothing(demo, signed_in, nothing_written):
    policy = production_policy(demo)

    with nothing_written():
        response = signed_in(demo.sec).post(admin_url(ApprovalPolicy, "change", policy.pk), posted(policy))

    assert response.status_code == 302


def test_a_manager_without_security_sees_the_policy_but_cannot_change_it(demo, signed_in, nothing_written):
    policy = production_policy(demo)
    client = signed_in(demo.mgr)

    page = client.get(admin_url(ApprovalPolicy, "change", policy.pk))
    with nothing_written():
        refused = client.post(admin_url(ApprovalPolicy, "change", policy.pk), posted(policy, min_approvals=0))

    assert page.status_code == 200
    assert 'name="min_approvals"' not in page.content.decode()
    assert refused.status_code == 403
    assert client.get(admin_url(ApprovalPolicy, "add")).status_code == 403


def test_the_environment_of_a_policy_is_fixed_once_created(demo, signed_in):
    policy = production_policy(demo)

    page = signed_in(demo.sec).get(admin_url(ApprovalPolicy, "change", policy.pk)).content.decode()

    assert 'name="min_approvals"' in page
    assert 'name="environment"' not in page


def test_a_second_policy_for_an_environment_is_a_form_error(demo, signed_in, nothing_written):
    duplicate = ApprovalPolicy(environment=demo.production, min_approvals=0)

    with nothing_written():
        response = signed_in(demo.sec).post(admin_url(ApprovalPolicy, "add"), posted(duplicate))

    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_a_refusal_by_the_service_is_a_form_error_and_writes_nothing(demo, nothing_written):
    """The admin offers the form to security only; should it reach the service for someone else (a
    grant ended while the page was open), the service's refusal is the form's error."""
    policy = production_policy(demo)
    form_class = type("Form", (ControlForm,), {
        "actor": demo.mgr, "control_kind": "releases.approvalpolicy",
        "Meta": type("Meta", (), {"model": ApprovalPolicy, "fields": ["min_approvals"]})})
    form = form_class(data=posted(policy, min_approvals=3), instance=policy)

    with nothing_written():
        assert not form.is_valid()

    assert form.non_field_errors() == [
        "missing_duty: Changing this approval policy needs security_approve for production."
    ]


def test_no_policy_lets_production_go_out_without_an_approval(demo, signed_in, nothing_written):
    policy = production_policy(demo)

    with nothing_written():
        response = signed_in(demo.sec).post(admin_url(ApprovalPolicy, "change", policy.pk),
                                            posted(policy, min_approvals=0))

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "control_floor: A production policy requires at least one approval."]


def test_nobody_deletes_a_policy(demo, signed_in, nothing_written):
    policy = production_policy(demo)

    with nothing_written():
        response = signed_in(demo.admin).post(admin_url(ApprovalPolicy, "delete", policy.pk), {"post": "yes"})

    assert response.status_code == 403
