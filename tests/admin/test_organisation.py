"""Teams, memberships, environments, roles, conflict rules, SoD exceptions and API keys in the
admin: read by duty, written only through their services; guardian's object-permission pages list
the derived permissions and refuse every edit (ARCHITECTURE principles 1 and 3)."""
from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.models import UserObjectPermission

from audit.models import AuditEvent
from governance import duties, services
from governance.models import (
    ConflictRule,
    ControlChange,
    Environment,
    Membership,
    Role,
    RoleAssignment,
    SoDException,
    Team,
)

pytestmark = pytest.mark.django_db

Status = RoleAssignment.Status


# --- teams and memberships --------------------------------------------------------------------


def test_manager_sees_only_the_teams_they_manage(demo, as_user, url):
    client = as_user(demo.mgr)

    response = client.get(url("governance_team_changelist"))

    assert list(response.context["cl"].result_list) == [demo.payments]
    assert client.get(url("governance_team_change", demo.identity.pk)).status_code == 302
    assert client.get(url("governance_team_history", demo.identity.pk)).status_code == 403
    assert client.get(url("governance_team_permissions", demo.identity.pk)).status_code == 404


def test_manager_adds_a_member_through_the_inline(demo, as_user, url, form_data):
    client = as_user(demo.mgr)
    page = client.get(url("governance_team_change", demo.payments.pk))
    data = form_data(page)
    row = data["memberships-TOTAL_FORMS"]
    data.update({"memberships-TOTAL_FORMS": row + 1, f"memberships-{row}-user": demo.idev.pk})

    response = client.post(url("governance_team_change", demo.payments.pk), data)

    assert response.status_code == 302
    assert Membership.objects.filter(team=demo.payments, user=demo.idev, is_manager=False).exists()
    event = AuditEvent.objects.get(action="team.member_added", team="payments", actor=demo.mgr)
    assert event.data == {"user": "idev", "is_manager": False}


def test_removing_a_member_revokes_their_grants_in_the_team(demo, as_user, url, form_data):
    client = as_user(demo.mgr)
    page = client.get(url("governance_team_change", demo.payments.pk))
    data = form_data(page)
    forms = page.context["inline_admin_formsets"][0].formset.forms
    [dev2_row] = [form for form in forms if form.instance.user == demo.dev2]
    data[f"{dev2_row.prefix}-DELETE"] = "on"

    response = client.post(url("governance_team_change", demo.payments.pk), data)

    assert response.status_code == 302
    assert not Membership.objects.filter(team=demo.payments, user=demo.dev2).exists()
    assert not RoleAssignment.objects.filter(user=demo.dev2, status=Status.ACTIVE).exists()
    assert AuditEvent.objects.filter(action="team.member_removed", actor=demo.mgr).exists()
    revocations = AuditEvent.objects.filter(action="role.revoked", actor=demo.mgr, data__reason="left team payments")
    assert revocations.count() == 3  # dev2's developer grants on development, staging and production


def test_moving_a_membership_row_to_someone_else_is_refused(demo, as_user, url, form_data, nothing_written):
    client = as_user(demo.mgr)
    page = client.get(url("governance_team_change", demo.payments.pk))
    data = form_data(page)
    [dev2_row] = [f for f in page.context["inline_admin_formsets"][0].formset.forms if f.instance.user == demo.dev2]
    data[f"{dev2_row.prefix}-user"] = demo.idev.pk

    with nothing_written():
        response = client.post(url("governance_team_change", demo.payments.pk), data)

    assert response.status_code == 200
    assert "To move someone, remove this row and add a new one." in response.content.decode()


def test_manager_cannot_rename_their_team(demo, as_user, url, form_data):
    client = as_user(demo.mgr)
    page = client.get(url("governance_team_change", demo.payments.pk))
    data = {**form_data(page), "name": "Renamed", "slug": "renamed"}

    response = client.post(url("governance_team_change", demo.payments.pk), data)

    assert 'name="name"' not in page.content.decode()
    assert response.status_code == 302
    demo.payments.refresh_from_db()
    assert demo.payments.name == "Payments"
    assert not AuditEvent.objects.filter(action__startswith="control.", actor=demo.mgr).exists()


def test_superuser_renames_a_team_through_the_service(demo, as_user, url, form_data):
    client = as_user(demo.admin)
    page = client.get(url("governance_team_change", demo.payments.pk))

    response = client.post(url("governance_team_change", demo.payments.pk), {**form_data(page), "name": "Payments EU"})

    assert response.status_code == 302
    demo.payments.refresh_from_db()
    assert demo.payments.name == "Payments EU"
    event = AuditEvent.objects.filter(action="control.changed").latest("sequence")
    assert (event.actor, event.data["kind"], event.data["changed"]) == (demo.admin, "governance.team", ["name"])
    assert (event.data["before"]["name"], event.data["after"]["name"]) == ("Payments", "Payments EU")


def test_superuser_adds_a_team_through_the_service(demo, as_user, url, form_data):
    client = as_user(demo.admin)
    page = client.get(url("governance_team_add"))

    response = client.post(
        url("governance_team_add"), {**form_data(page), "name": "Platform", "slug": "platform", "time_zone": "UTC"}
    )

    assert response.status_code == 302
    platform = Team.objects.get(slug="platform")
    event = AuditEvent.objects.filter(action="control.changed", data__kind="governance.team").latest("sequence")
    assert (event.data["operation"], event.data["target"], event.data["before"]) == ("create", str(platform.pk), None)


def test_a_manager_cannot_add_a_team(demo, as_user, url):
    assert as_user(demo.mgr).get(url("governance_team_add")).status_code == 403


def test_nobody_deletes_a_team(demo, as_user, url):
    response = as_user(demo.admin).post(url("governance_team_delete", demo.identity.pk), {"post": "yes"})

    assert response.status_code == 403
    assert Team.objects.filter(pk=demo.identity.pk).exists()


def test_team_history_renders_and_cannot_revert(demo, as_user, url, nothing_written):
    client = as_user(demo.mgr)
    version = demo.payments.history.earliest("history_date")

    history = client.get(url("governance_team_history", demo.payments.pk))
    with nothing_written():
        revert = client.post(
            url("governance_team_simple_history", demo.payments.pk, version.history_id), {"name": "Old"}
        )

    assert history.status_code == 200
    assert revert.status_code == 403
    demo.payments.refresh_from_db()
    assert demo.payments.name == "Payments"


# --- environments -----------------------------------------------------------------------------


def test_environment_history_renders(demo, as_user, url):
    response = as_user(demo.mgr).get(url("governance_environment_history", demo.production.pk))

    assert response.status_code == 200
    assert "Production" in response.content.decode()


def test_superuser_adds_an_environment_through_the_service(demo, as_user, url):
    response = as_user(demo.admin).post(
        url("governance_environment_add"),
        {"name": "Sandbox", "slug": "sandbox", "tier": "development", "order": 0, "time_zone": "UTC", "_save": "Save"},
    )

    assert response.status_code == 302
    sandbox = Environment.objects.get(slug="sandbox")
    event = AuditEvent.objects.filter(action="control.changed", data__kind="governance.environment").latest("sequence")
    assert (event.data["target"], event.data["after"]["tier"]) == (str(sandbox.pk), "development")
    # sec's every-environment security grant reaches the new environment through the service
    assert UserObjectPermission.objects.filter(
        user=demo.sec, object_pk=str(sandbox.pk), permission__codename=duties.codename(duties.SECURITY_APPROVE)
    ).exists()


def test_managers_only_read_environments(demo, as_user, url, nothing_written):
    client = as_user(demo.mgr)

    with nothing_written():
        add = client.get(url("governance_environment_add"))
        change = client.post(
            url("governance_environment_change", demo.production.pk), {"name": "Prod", "tier": "staging"}
        )

    assert add.status_code == 403
    assert change.status_code == 403


# --- guardian's object permissions: listed, never edited --------------------------------------


def test_environment_object_permissions_list_who_holds_duties(demo, as_user, url):
    response = as_user(demo.sec).get(url("governance_environment_permissions", demo.production.pk))

    assert response.status_code == 200
    listed = {user.username for user in response.context["users_perms"]}
    assert listed == {"dev", "dev2", "rev", "rev2", "ops", "sec", "idev"}
    assert set(response.context["users_perms"][demo.ops]) == {duties.codename(duties.DEPLOY)}
    content = response.content.decode()
    assert "derived from role assignments" in content
    assert "submit_manage_user" not in content
    assert "user-manage/" not in content


def test_object_permission_edits_are_refused(demo, as_user, url, nothing_written):
    client = as_user(demo.admin)
    production = demo.production.pk
    deploy = duties.codename(duties.DEPLOY)

    with nothing_written():
        pick_user = client.post(
            url("governance_environment_permissions", production), {"user": "dev", "submit_manage_user": "1"}
        )
        open_user = client.get(url("governance_environment_permissions_manage_user", production, demo.dev.pk))
        grant_user = client.post(
            url("governance_environment_permissions_manage_user", production, demo.dev.pk), {"permissions": [deploy]}
        )
        open_group = client.get(url("governance_environment_permissions_manage_group", production, 1))

    assert [pick_user.status_code, open_user.status_code, grant_user.status_code, open_group.status_code] == [403] * 4


def test_environment_object_permissions_are_hidden_from_a_manager(demo, as_user, url):
    client = as_user(demo.mgr)

    change = client.get(url("governance_environment_change", demo.production.pk))
    permissions = client.get(url("governance_environment_permissions", demo.production.pk))

    assert "Object permissions" not in change.content.decode()
    assert permissions.status_code == 403


def test_manager_reads_the_object_permissions_of_their_team(demo, as_user, url):
    client = as_user(demo.mgr)

    change = client.get(url("governance_team_change", demo.payments.pk))
    permissions = client.get(url("governance_team_permissions", demo.payments.pk))

    assert "Object permissions" in change.content.decode()
    assert permissions.status_code == 200
    assert set(permissions.context["users_perms"][demo.mgr]) == {
        duties.codename(duties.MANAGE_ROLES), duties.codename(duties.REVIEW_ACCESS)
    }


# --- roles and conflict rules -----------------------------------------------------------------


def test_superuser_defines_a_role_with_its_duties(demo, as_user, url):
    response = as_user(demo.admin).post(
        url("governance_role_add"),
        {
            "name": "Release captain", "slug": "release-captain", "description": "", "scope": "environment",
            "duties": [duties.APPROVE, duties.SUBMIT], "_save": "Save",
        },
    )

    assert response.status_code == 302
    role = Role.objects.get(slug="release-captain")
    assert set(role.duties.values_list("duty", flat=True)) == {duties.APPROVE, duties.SUBMIT}
    event = AuditEvent.objects.get(action="control.changed", data__kind="governance.role")
    assert event.data["after"]["duties"] == [duties.APPROVE, duties.SUBMIT]


def test_a_duty_added_to_a_role_waits_for_a_second_person(demo, as_user, url, form_data, run_action):
    client = as_user(demo.admin)
    reviewer = demo.roles["reviewer"]
    page = client.get(url("governance_role_change", reviewer.pk))

    response = client.post(
        url("governance_role_change", reviewer.pk),
        {**form_data(page), "duties": [duties.APPROVE, duties.REVIEW_ACCESS]},
    )
    held = set(reviewer.duties.values_list("duty", flat=True))
    [proposal] = ControlChange.objects.filter(kind="governance.role", status="pending")
    run_action(as_user(demo.sec), "governance_controlchange", "approve_selected", [proposal])

    assert response.status_code == 302
    assert held == {duties.APPROVE}
    assert proposal.weakening == [{"field": "duties", "message": "duties: review_access added"}]
    assert set(reviewer.duties.values_list("duty", flat=True)) == {duties.APPROVE, duties.REVIEW_ACCESS}
    event = AuditEvent.objects.filter(action="control.approved", actor=demo.sec).latest("sequence")
    assert (event.data["before"]["duties"], event.data["after"]["duties"]) == (["approve"], ["approve", "review_access"])


def test_manager_reads_roles_and_their_duties_but_cannot_change_them(demo, as_user, url, nothing_written):
    client = as_user(demo.mgr)
    security = demo.roles["security"]

    changelist = client.get(url("governance_role_changelist"))
    with nothing_written():
        change = client.post(url("governance_role_change", security.pk), {"name": "x", "duties": ["deploy"]})

    assert "approve, security_approve, view_audit" in changelist.content.decode()
    assert change.status_code == 403


def test_security_adds_a_conflict_rule_through_the_service(demo, as_user, url):
    response = as_user(demo.sec).post(
        url("governance_conflictrule_add"),
        {"duty_a": "approve", "duty_b": "deploy", "tier": "staging", "description": "", "is_active": "on",
         "_save": "Save"},
    )

    assert response.status_code == 302
    rule = ConflictRule.objects.get(tier="staging", duty_a="approve")
    event = AuditEvent.objects.get(action="control.changed", actor=demo.sec)
    assert (event.data["kind"], event.data["target"]) == ("governance.conflictrule", str(rule.pk))


def test_manager_cannot_add_a_conflict_rule(demo, as_user, url):
    assert as_user(demo.mgr).get(url("governance_conflictrule_add")).status_code == 403


# --- SoD exceptions ---------------------------------------------------------------------------


def exception_form(demo, user, duty_a, duty_b, environment, *, days=30):
    expires_at = timezone.now() + timedelta(days=days)
    return {
        "user": user.pk, "duty_a": duty_a, "duty_b": duty_b, "environment": environment.pk,
        "justification": "Incident cover", "expires_at_0": expires_at.strftime("%Y-%m-%d"),
        "expires_at_1": expires_at.strftime("%H:%M:%S"), "_save": "Save",
    }


def test_an_exception_requested_by_a_manager_and_approved_by_security_not_a_superuser_lets_the_grant_through(
    demo, as_user, url, run_action, messages_in, grant_form
):
    mgr, sec, superuser = as_user(demo.mgr), as_user(demo.sec), as_user(demo.admin)

    mgr.post(url("governance_sodexception_add"), exception_form(demo, demo.dev, "submit", "deploy", demo.production))
    exception = SoDException.objects.get(user=demo.dev)
    refused = run_action(superuser, "governance_sodexception", "approve_selected", [exception])
    run_action(sec, "governance_sodexception", "approve_selected", [exception])
    mgr.post(url("governance_roleassignment_add"), grant_form(demo.dev, "operations", demo.production, days=30))

    assert exception.requested_by == demo.mgr
    assert messages_in(refused) == [
        f"{exception}: not approved. missing_duty: Approving an SoD exception needs security_approve for production."
    ]
    exception.refresh_from_db()
    assert exception.status == SoDException.Status.ACTIVE
    assert exception.approved_by == demo.sec
    grant = RoleAssignment.objects.get(user=demo.dev, role__slug="operations")
    assert grant.sod_exception == exception
    assert grant.status == Status.PENDING


def test_an_exception_for_duties_no_rule_pairs_is_refused(demo, as_user, url, nothing_written):
    with nothing_written():
        response = as_user(demo.mgr).post(
            url("governance_sodexception_add"), exception_form(demo, demo.dev, "submit", "approve", demo.production)
        )

    assert response.status_code == 200
    assert "duty_b" in response.context["adminform"].form.errors


def test_security_revokes_an_exception_with_a_reason(demo, as_user, run_action):
    exception = services.sod_exception_request(
        actor=demo.mgr, user=demo.dev, duty_a="submit", duty_b="deploy", environment=demo.production,
        justification="cover", expires_at=timezone.now() + timedelta(days=10),
    )

    run_action(as_user(demo.sec), "governance_sodexception", "revoke_selected", [exception], reason="incident over")

    exception.refresh_from_db()
    assert exception.status == SoDException.Status.REVOKED
    assert AuditEvent.objects.get(action="sod_exception.revoked").data["reason"] == "incident over"


# --- API keys ---------------------------------------------------------------------------------


def test_a_manager_lists_and_revokes_only_their_own_keys(demo, as_user, url, run_action, nothing_written):
    own, _ = services.api_token_create(actor=demo.mgr, user=demo.mgr, name="laptop")
    others, _ = services.api_token_create(actor=demo.dev, user=demo.dev, name="ci")
    client = as_user(demo.mgr)

    changelist = client.get(url("governance_apitoken_changelist"))
    with nothing_written():
        run_action(client, "governance_apitoken", "revoke_selected", [others])
    run_action(client, "governance_apitoken", "revoke_selected", [own])

    assert list(changelist.context["cl"].result_list) == [own]
    own.refresh_from_db(), others.refresh_from_db()
    assert own.revoked_at is not None
    assert others.revoked_at is None
    assert AuditEvent.objects.filter(action="api_token.revoked", actor=demo.mgr).count() == 1


def test_a_key_page_never_shows_the_full_hash(demo, as_user, url):
    token, _ = services.api_token_create(actor=demo.admin, user=demo.admin, name="ops")

    content = as_user(demo.admin).get(url("governance_apitoken_change", token.pk)).content.decode()

    assert token.key_hash[:8] in content
    assert token.key_hash not in content


# --- accounts: permissions are derived --------------------------------------------------------


def test_user_permissions_and_groups_cannot_be_hand_edited(demo, as_user, url):
    content = as_user(demo.admin).get(url("auth_user_change", demo.auditor.pk)).content.decode()

    assert 'name="user_permissions"' not in content
    assert 'name="groups"' not in content
    assert 'name="password"' not in content
    assert "send a reset link" in content
