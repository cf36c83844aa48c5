"""Managers grant, approve, reject and revoke roles in the admin; every write is the grant
service's, every refusal carries its reason codes and writes nothing (RULES.md G1–G5, V2, V4)."""
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from governance import duties, services
from governance.models import RoleAssignment
from governance.selectors import has_duty

pytestmark = pytest.mark.django_db

Status = RoleAssignment.Status


def pending_grant(demo, user, role_slug, environment, *, actor=None, days=30):
    return services.role_grant(
        actor=actor or demo.mgr, user=user, role=demo.roles[role_slug], team=demo.payments, environment=environment,
        justification="Release cover", expires_at=timezone.now() + timedelta(days=days),
    )


# --- V2 / V4: who sees what -------------------------------------------------------------------


def test_manager_sees_only_the_grants_of_the_team_they_manage(demo, as_user, url):
    response = as_user(demo.mgr).get(url("governance_roleassignment_changelist"))

    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert {assignment.team.slug for assignment in shown} == {"payments"}
    assert {assignment.user.username for assignment in shown} >= {"dev", "rev", "ops", "auditor"}
    assert "idev" not in response.content.decode()


def test_manager_cannot_open_another_teams_grant_nor_its_history(demo, as_user, url):
    identity_grant = RoleAssignment.objects.filter(user=demo.idev).first()
    client = as_user(demo.mgr)

    change = client.get(url("governance_roleassignment_change", identity_grant.pk))
    history = client.get(url("governance_roleassignment_history", identity_grant.pk))

    assert change.status_code == 302  # the admin's "does not exist" redirect: forbidden looks like missing
    assert history.status_code == 403


def test_security_and_audit_see_every_team_but_cannot_grant(demo, as_user, url):
    for persona in (demo.sec, demo.auditor):
        client = as_user(persona)
        changelist = client.get(url("governance_roleassignment_changelist"))
        assert {a.team.slug for a in changelist.context["cl"].result_list} == {"payments", "identity"}
        assert client.get(url("governance_roleassignment_add")).status_code == 403


def test_auditor_is_offered_no_decision_actions(demo, as_user, url):
    response = as_user(demo.auditor).get(url("governance_roleassignment_changelist"))

    assert "approve_selected" not in response.content.decode()
    assert "revoke_selected" not in response.content.decode()


def test_a_user_who_is_not_staff_cannot_reach_the_admin(demo, as_user, url):
    response = as_user(demo.dev).get(url("index"))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert as_user(demo.dev).get(url("governance_roleassignment_changelist")).status_code == 302


def test_staff_status_without_a_duty_shows_nothing(demo, as_user, url):
    clerk = services.user_provision(username="clerk", password="x", is_staff=True, source="tests")
    client = as_user(clerk)

    index = client.get(url("index"))

    assert index.status_code == 200
    assert "Role assignments" not in index.content.decode()
    assert client.get(url("governance_roleassignment_changelist")).status_code == 403
    assert client.get(url("audit_auditevent_changelist")).status_code == 403


def test_a_lapsed_manager_loses_the_admin_with_the_duty(demo, as_user, url):
    manager_grant = RoleAssignment.objects.get(user=demo.mgr, role__slug="manager")
    services.role_assignment_revoke(actor=demo.sec, assignment=manager_grant, reason="moved on")

    assert as_user(demo.mgr).get(url("governance_roleassignment_changelist")).status_code == 403


def test_manager_index_lists_governance_but_not_the_audit_trail(demo, as_user, url):
    content = as_user(demo.mgr).get(url("index")).content.decode()

    assert "Role assignments" in content
    assert "Audit events" not in content


# --- G1–G4 through the add form ---------------------------------------------------------------


def test_add_form_offers_only_the_members_and_teams_the_manager_may_grant_in(demo, as_user, url):
    page = as_user(demo.mgr).get(url("governance_roleassignment_add"))
    form = page.context["adminform"].form

    offered_users = {label for value, label in form.fields["user"].choices if value}
    offered_teams = {label for value, label in form.fields["team"].choices if value}
    assert offered_users == {"dev", "dev2", "rev", "rev2", "sec", "ops", "auditor"}
    assert offered_teams == {"Payments"}
    rendered = page.content.decode()
    assert ">idev</option>" not in rendered and ">mgr</option>" not in rendered
    assert ">Identity</option>" not in rendered and ">Payments</option>" in rendered


def test_manager_grants_a_role_through_the_add_form(demo, as_user, url, grant_form):
    response = as_user(demo.mgr).post(
        url("governance_roleassignment_add"), grant_form(demo.dev2, "reviewer", demo.staging)
    )

    assert response.status_code == 302
    assignment = RoleAssignment.objects.get(user=demo.dev2, role__slug="reviewer", environment=demo.staging)
    assert assignment.status == Status.ACTIVE
    assert assignment.requested_by == demo.mgr
    assert has_duty(demo.dev2, duties.APPROVE, environment=demo.staging)
    event = AuditEvent.objects.get(action="role.granted", target_id=str(assignment.pk))
    assert event.actor == demo.mgr
    assert event.ip == "127.0.0.1"
    assert event.team == "payments"


def test_a_privileged_grant_from_the_form_waits_for_a_second_approver(demo, as_user, url, grant_form):
    response = as_user(demo.mgr).post(
        url("governance_roleassignment_add"), grant_form(demo.dev2, "reviewer", demo.production, days=30), follow=True
    )

    assignment = RoleAssignment.objects.get(user=demo.dev2, role__slug="reviewer", environment=demo.production)
    assert assignment.status == Status.PENDING
    assert AuditEvent.objects.filter(action="role.grant_requested", target_id=str(assignment.pk)).exists()
    assert "pending until a second person approves it" in response.content.decode()


@pytest.mark.parametrize(
    "case, expected",
    [
        ("self_grant", ["self_grant", "Nobody may grant a role to themselves."]),
        ("sod_conflict", ["sod_conflict", "submit and deploy may not be held together for production"]),
        ("missing_duty", ["missing_duty", "You do not hold manage_roles in team identity."]),
        ("missing_expiry", ["This grant is privileged and needs an expiry"]),
    ],
)
def test_a_refused_grant_shows_its_reasons_and_writes_nothing(
    demo, as_user, url, grant_form, nothing_written, case, expected
):
    data = {
        "self_grant": lambda: grant_form(demo.mgr, "developer", demo.development),
        "sod_conflict": lambda: grant_form(demo.dev, "operations", demo.production, days=30),
        "missing_duty": lambda: grant_form(demo.idev, "reviewer", demo.development, team=demo.identity),
        "missing_expiry": lambda: grant_form(demo.dev2, "reviewer", demo.production),
    }[case]()

    with nothing_written():
        response = as_user(demo.mgr).post(url("governance_roleassignment_add"), data)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert not form.is_valid()
    content = response.content.decode()
    for text in expected:
        assert text in content
    if case == "missing_expiry":
        assert "expires_at" in form.errors
    else:
        assert any(error.startswith(f"{case}: ") for error in form.non_field_errors())


def test_superuser_is_refused_a_conflicting_grant_like_anyone(demo, as_user, url, grant_form, nothing_written):
    with nothing_written():
        response = as_user(demo.admin).post(
            url("governance_roleassignment_add"), grant_form(demo.dev, "operations", demo.production, days=30)
        )

    assert response.status_code == 200
    assert "sod_conflict" in response.content.decode()


def test_superuser_granting_to_themselves_gets_every_reason(demo, as_user, url, grant_form, nothing_written):
    with nothing_written():
        response = as_user(demo.admin).post(
            url("governance_roleassignment_add"), grant_form(demo.admin, "developer", demo.development)
        )

    codes = {error.split(":")[0] for error in response.context["adminform"].form.non_field_errors()}
    assert codes == {"self_grant", "not_team_member"}


# --- G4: approve and reject actions -----------------------------------------------------------


def test_requester_cannot_approve_their_own_request(demo, as_user, run_action, messages_in):
    assignment = pending_grant(demo, demo.dev2, "reviewer", demo.production)

    response = run_action(as_user(demo.mgr), "governance_roleassignment", "approve_selected", [assignment])

    assignment.refresh_from_db()
    assert assignment.status == Status.PENDING
    [message] = messages_in(response)
    assert "not approved" in message
    assert "four_eyes_grant: A privileged grant must be approved by someone other than its requester" in message


def test_security_approves_a_pending_grant(demo, as_user, run_action, messages_in):
    assignment = pending_grant(demo, demo.dev2, "reviewer", demo.production)

    response = run_action(as_user(demo.sec), "governance_roleassignment", "approve_selected", [assignment])

    assignment.refresh_from_db()
    assert assignment.status == Status.ACTIVE
    assert assignment.approved_by == demo.sec
    assert messages_in(response) == [f"{assignment}: approved."]
    assert AuditEvent.objects.filter(action="role.grant_approved", actor=demo.sec).exists()
    assert has_duty(demo.dev2, duties.APPROVE, environment=demo.production)


def test_approve_reports_each_grant_on_its_own(demo, as_user, run_action, messages_in):
    pending = pending_grant(demo, demo.dev2, "reviewer", demo.production)
    already_active = RoleAssignment.objects.get(user=demo.dev, environment=demo.development)

    response = run_action(as_user(demo.sec), "governance_roleassignment", "approve_selected", [pending, already_active])

    pending.refresh_from_db()
    assert pending.status == Status.ACTIVE
    reported = messages_in(response)
    assert f"{pending}: approved." in reported
    assert any(m.startswith(f"{already_active}: not approved. invalid_state:") for m in reported)


def test_security_rejects_a_pending_grant_with_a_reason(demo, as_user, run_action):
    assignment = pending_grant(demo, demo.dev2, "reviewer", demo.production)

    run_action(as_user(demo.sec), "governance_roleassignment", "reject_selected", [assignment], reason="not needed")

    assignment.refresh_from_db()
    assert assignment.status == Status.REJECTED
    assert assignment.ended_by == demo.sec
    assert assignment.end_reason == "not needed"


# --- G5: revoke action ------------------------------------------------------------------------


def test_revoke_needs_a_reason(demo, as_user, run_action, messages_in, nothing_written):
    assignment = RoleAssignment.objects.get(user=demo.dev2, environment=demo.production)

    with nothing_written():
        response = run_action(as_user(demo.mgr), "governance_roleassignment", "revoke_selected", [assignment])

    assert "Say why the grant is revoked." in messages_in(response)[0]


def test_manager_revokes_a_grant_and_the_duty_ends_at_once(demo, as_user, run_action, messages_in):
    assignment = RoleAssignment.objects.get(user=demo.dev2, environment=demo.production)

    response = run_action(
        as_user(demo.mgr), "governance_roleassignment", "revoke_selected", [assignment], reason="left the project"
    )

    assignment.refresh_from_db()
    assert assignment.status == Status.REVOKED
    assert assignment.ended_by == demo.mgr
    assert messages_in(response) == [f"{assignment}: revoked."]
    assert not has_duty(demo.dev2, duties.SUBMIT, environment=demo.production)
    assert AuditEvent.objects.filter(action="role.revoked", target_id=str(assignment.pk), actor=demo.mgr).exists()


def test_an_action_cannot_reach_a_grant_the_actor_cannot_see(demo, as_user, run_action, nothing_written):
    identity_grant = RoleAssignment.objects.filter(user=demo.idev).first()

    with nothing_written():
        run_action(as_user(demo.mgr), "governance_roleassignment", "revoke_selected", [identity_grant], reason="x")

    identity_grant.refresh_from_db()
    assert identity_grant.status == Status.ACTIVE


# --- the change page is a record, not a form --------------------------------------------------


def test_change_page_is_read_only(demo, as_user, url, nothing_written):
    assignment = RoleAssignment.objects.get(user=demo.dev2, environment=demo.production)
    client = as_user(demo.mgr)

    page = client.get(url("governance_roleassignment_change", assignment.pk))
    with nothing_written():
        post = client.post(
            url("governance_roleassignment_change", assignment.pk), {"status": "revoked", "justification": "x"}
        )

    content = page.content.decode()
    assert page.status_code == 200
    assert 'name="status"' not in content
    assert 'name="_save"' not in content
    assert '<div class="readonly">Active</div>' in content
    assert post.status_code == 403


def test_nobody_deletes_a_grant_not_even_a_superuser(demo, as_user, url):
    assignment = RoleAssignment.objects.get(user=demo.dev2, environment=demo.production)

    response = as_user(demo.admin).post(url("governance_roleassignment_delete", assignment.pk), {"post": "yes"})

    assert response.status_code == 403
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists()


def test_history_page_renders_and_cannot_revert(demo, as_user, url, nothing_written):
    assignment = RoleAssignment.objects.get(user=demo.dev2, environment=demo.production)
    client = as_user(demo.mgr)
    version = assignment.history.earliest("history_date")

    history = client.get(url("governance_roleassignment_history", assignment.pk))
    past_version = client.get(url("governance_roleassignment_simple_history", assignment.pk, version.history_id))
    with nothing_written():
        revert = client.post(
            url("governance_roleassignment_simple_history", assignment.pk, version.history_id), {"status": "pending"}
        )

    assert history.status_code == 200
    assert "dev2" in history.content.decode()
    assert past_version.status_code == 200
    assert 'name="status"' not in past_version.content.decode()
    assert "Revert" not in past_version.content.decode()
    assert revert.status_code == 403
