"""The five things one person could do alone (issue "Govern the governors", "Why"), each through
the door where the review reproduced it, now refused or held for a second person (RULES.md 8)."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from audit.models import AuditEvent
from governance import duties, services
from governance.controls.services import control_change
from governance.models import ConflictRule, ControlChange, Environment, RoleAssignment, SoDException
from governance.selectors import has_duty
from releases.models import ApprovalPolicy
from tests.controls.conftest import last_event

User = get_user_model()


def admin_url(name, *args):
    return reverse(f"admin:{name}", args=args)


def action(client, model, name, objects, **extra):
    return client.post(admin_url(f"{model}_changelist"),
                       {"action": name, "_selected_action": [o.pk for o in objects], "index": 0, **extra}, follow=True)


# --- 1. The superuser sets other people's passwords, and makes sock-puppet superusers -------------


def test_the_superuser_cannot_set_anyones_password_only_send_them_a_link(demo, client_as,
                                                                        django_capture_on_commit_callbacks):
    admin = client_as(demo.admin)
    for person in (demo.dev, demo.rev, demo.rev2, demo.ops):
        page = admin.get(admin_url("auth_user_password_change", person.pk))
        with django_capture_on_commit_callbacks(execute=True):
            admin.post(admin_url("auth_user_password_change", person.pk),
                       {"password1": "taken-over-1", "password2": "taken-over-1", "reason": "forgot it"})

        assert 'name="password1"' not in page.content.decode()
        person.refresh_from_db()
        assert person.check_password("countersign-demo")
        assert not person.check_password("taken-over-1")
    change_page = admin.get(admin_url("auth_user_change", demo.dev.pk)).content.decode()

    assert 'name="password' not in change_page
    assert sorted(m.to[0] for m in mail.outbox) == ["dev@example.com", "ops@example.com", "rev2@example.com",
                                                     "rev@example.com"]
    assert all("taken-over" not in m.body for m in mail.outbox)
    links = AuditEvent.objects.filter(action="account.password_reset_issued", actor=demo.admin)
    assert links.count() == 4
    assert {e.data["sent_to"] for e in links} == {"d…@example.com", "r…@example.com", "o…@example.com"}


def test_a_superuser_account_made_by_the_superuser_waits_for_a_second_person(demo, client_as,
                                                                            django_capture_on_commit_callbacks):
    admin = client_as(demo.admin)

    response = admin.post(admin_url("auth_user_add"), {
        "username": "puppet", "email": "puppet@example.com", "is_staff": "on", "is_superuser": "on", "_save": "Save"})
    proposal = ControlChange.objects.get(kind="auth.user", status="pending")
    self_approval = action(admin, "governance_controlchange", "approve_selected", [proposal])

    assert response.status_code == 302
    assert not User.objects.filter(username="puppet").exists()
    assert {w["field"] for w in proposal.weakening} == {"is_staff", "is_superuser"}
    assert "four_eyes_control" in self_approval.content.decode()
    assert not User.objects.filter(username="puppet").exists()
    with django_capture_on_commit_callbacks(execute=True):
        action(client_as(demo.sec), "governance_controlchange", "approve_selected", [proposal])
    puppet = User.objects.get(username="puppet")
    assert puppet.is_superuser and not puppet.has_usable_password()
    assert [m.to for m in mail.outbox] == [["puppet@example.com"]]


def test_elevating_or_reactivating_an_account_waits_for_a_second_person(demo, client_as, form_data):
    admin = client_as(demo.admin)
    page = admin.get(admin_url("auth_user_change", demo.dev.pk))

    admin.post(admin_url("auth_user_change", demo.dev.pk), {**form_data(page), "is_superuser": "on"})
    User.objects.filter(pk=demo.idev.pk).update(is_active=False)
    page = admin.get(admin_url("auth_user_change", demo.idev.pk))
    ControlChange.objects.filter(status="pending").update(status="withdrawn")
    admin.post(admin_url("auth_user_change", demo.idev.pk), {**form_data(page), "is_active": "on"})

    demo.dev.refresh_from_db(), demo.idev.refresh_from_db()
    assert not demo.dev.is_superuser and not demo.idev.is_active
    assert [c.weakening[0]["field"] for c in ControlChange.objects.filter(kind="auth.user").order_by("pk")] == [
        "is_superuser", "is_active"]


def test_nobody_approves_a_change_to_their_own_account(demo, client_as, form_data, sec2):
    User.objects.filter(pk=sec2.pk).update(is_active=True)
    admin = client_as(demo.admin)
    page = admin.get(admin_url("auth_user_change", demo.sec.pk))
    admin.post(admin_url("auth_user_change", demo.sec.pk), {**form_data(page), "is_superuser": "on"})
    proposal = ControlChange.objects.get(kind="auth.user", status="pending")

    refused = action(client_as(demo.sec), "governance_controlchange", "approve_selected", [proposal])

    assert "Nobody approves a change to their own account" in refused.content.decode()
    demo.sec.refresh_from_db()
    assert not demo.sec.is_superuser


def test_an_account_changed_outside_the_services_is_recorded_and_alerted(demo):
    """Django's own commands (createsuperuser, changepassword) and a shell bypass every door: what they
    change on an account is caught when it is saved."""
    demo.ops.set_password("from-a-shell")
    demo.ops.is_staff = True
    demo.ops.save()
    User.objects.create_superuser("rogue", "rogue@example.com", "x")

    events = AuditEvent.objects.filter(action="account.changed_outside_service").order_by("sequence")
    assert [(e.data["user"], e.data["changed"]) for e in events] == [
        ("ops", ["is_staff", "password"]),
        ("rogue", ["email", "is_active", "is_staff", "is_superuser", "username"]),
    ]
    assert events[0].data["before"]["is_staff"] is False and events[0].data["after"]["is_staff"] is True
    assert AuditEvent.objects.filter(action="alert.raised", data__kind="control_changed_outside_service").count() == 2


# --- 2. A security officer for development only rewrites production's rules ----------------------


@pytest.fixture
def dev_only_security(demo):
    """rev2 holds security for development only (privileged: mgr asks, sec approves)."""
    grant = services.role_grant(actor=demo.mgr, user=demo.rev2, role=demo.roles["security"], team=demo.payments,
                                environment=demo.development, justification="Development on-call",
                                expires_at=timezone.now() + timedelta(days=10))
    services.role_assignment_approve(actor=demo.sec, assignment=grant)
    User.objects.filter(pk=demo.rev2.pk).update(is_staff=True)
    demo.rev2.refresh_from_db()
    return demo.rev2


def test_security_for_development_cannot_touch_the_production_policy(demo, client_as, dev_only_security,
                                                                     nothing_written):
    policy = ApprovalPolicy.objects.get(environment=demo.production)
    client = client_as(dev_only_security)

    with nothing_written():
        page = client.get(admin_url("releases_approvalpolicy_change", policy.pk))
        posted = client.post(admin_url("releases_approvalpolicy_change", policy.pk), {
            "min_approvals": 0, "min_security_approvals": 0, "high_risk_security_approvals": 0,
            "emergency_min_approvals": 0, "pir_due_hours": 48, "review_sla_minutes": 240, "_save": "Save"})

    assert 'name="min_approvals"' not in page.content.decode()
    assert posted.status_code == 403


def test_security_for_development_cannot_switch_a_conflict_rule_off(demo, client_as, dev_only_security,
                                                                    nothing_written):
    rule = ConflictRule.objects.get(duty_a="approve", duty_b="deploy")

    with nothing_written():
        response = client_as(dev_only_security).post(admin_url("governance_conflictrule_change", rule.pk), {
            "duty_a": "approve", "duty_b": "deploy", "tier": "production", "description": "", "_save": "Save"})

    assert response.status_code == 403
    assert ConflictRule.objects.get(pk=rule.pk).is_active


def test_security_for_development_cannot_approve_a_production_sod_exception(demo, client_as, dev_only_security):
    exception = services.sod_exception_request(
        actor=demo.mgr, user=demo.dev, duty_a="submit", duty_b="deploy", environment=demo.production,
        justification="Hotfix cover", expires_at=timezone.now() + timedelta(days=3))

    response = action(client_as(dev_only_security), "governance_sodexception", "approve_selected", [exception])

    assert "missing_duty: Approving an SoD exception needs security_approve for production." in response.content.decode()
    assert SoDException.objects.get(pk=exception.pk).status == "pending"


def test_no_one_sets_production_to_zero_approvals_even_with_a_second_person(demo, nothing_written):
    policy = ApprovalPolicy.objects.get(environment=demo.production)

    with nothing_written(), pytest.raises(Exception) as refused:
        control_change(actor=demo.sec, kind="releases.approvalpolicy", target=policy,
                       values={"min_approvals": 0, "emergency_min_approvals": 0})

    assert refused.value.codes == ["control_floor", "control_floor"]


# --- 3. The superuser edits what the grant checks read, grants, then restores it --------------------


def test_lowering_productions_tier_to_slip_a_grant_past_four_eyes_is_held(demo, client_as, form_data):
    admin = client_as(demo.admin)
    page = admin.get(admin_url("governance_environment_change", demo.production.pk))

    admin.post(admin_url("governance_environment_change", demo.production.pk), {**form_data(page), "tier": "staging"})
    grant = services.role_grant(actor=demo.admin, user=demo.dev2, role=demo.roles["reviewer"], team=demo.payments,
                                environment=demo.production, justification="Release week",
                                expires_at=timezone.now() + timedelta(days=5))

    assert Environment.objects.get(pk=demo.production.pk).tier == "production"
    assert ControlChange.objects.get(kind="governance.environment", status="pending").weakening[0]["field"] == "tier"
    assert grant.status == RoleAssignment.Status.PENDING


def test_emptying_a_role_to_grant_it_and_refilling_it_is_held(demo, client_as, form_data):
    admin = client_as(demo.admin)
    operations = demo.roles["operations"]
    page = admin.get(admin_url("governance_role_change", operations.pk))
    admin.post(admin_url("governance_role_change", operations.pk), {**form_data(page), "duties": []})
    grant = services.role_grant(actor=demo.admin, user=demo.dev, role=operations, team=demo.payments,
                                environment=demo.production, justification="Looks harmless: no duties")
    page = admin.get(admin_url("governance_role_change", operations.pk))

    admin.post(admin_url("governance_role_change", operations.pk), {**form_data(page), "duties": ["deploy"]})

    assert grant.status == RoleAssignment.Status.ACTIVE  # a role with no duty is no privilege
    assert list(operations.duties.values_list("duty", flat=True)) == []
    assert ControlChange.objects.get(kind="governance.role", status="pending").weakening[0]["message"] == (
        "duties: deploy added")
    assert not has_duty(demo.dev, duties.DEPLOY, environment=demo.production)


# --- 4. Detective controls switched off in the schedules admin ------------------------------------


@pytest.fixture
def schedules(db):
    from django.core.management import call_command

    call_command("sync_schedules", stdout=open("/dev/null", "w"))
    return PeriodicTask.objects.get(name="audit: verify the hash chain")


def test_disabling_deleting_or_slowing_a_detective_task_is_held_and_recorded(demo, client_as, schedules, form_data):
    admin = client_as(demo.admin)
    verify = schedules

    action(admin, "django_celery_beat_periodictask", "disable_selected", [verify])
    ControlChange.objects.filter(status="pending").update(status="withdrawn")
    admin.post(admin_url("django_celery_beat_periodictask_delete", verify.pk), {"post": "yes"})
    ControlChange.objects.filter(status="pending").update(status="withdrawn")
    weekly, _ = IntervalSchedule.objects.get_or_create(every=7, period="days")
    page = admin.get(admin_url("django_celery_beat_periodictask_change", verify.pk))
    admin.post(admin_url("django_celery_beat_periodictask_change", verify.pk),
               {**form_data(page), "interval": weekly.pk})

    verify.refresh_from_db()
    assert (verify.enabled, verify.interval.every, verify.interval.period) == (True, 3600, "seconds")
    proposals = ControlChange.objects.filter(kind="django_celery_beat.periodictask").exclude(status="applied").order_by("pk")
    assert [(p.operation, p.weakening[0]["field"]) for p in proposals] == [
        ("update", "enabled"), ("delete", ""), ("update", "schedule")]
    assert AuditEvent.objects.filter(action="control.proposed", data__kind="django_celery_beat.periodictask").count() == 3


def test_a_detective_task_runs_more_often_at_once(demo, client_as, schedules, form_data):
    admin = client_as(demo.admin)
    every_ten_minutes, _ = IntervalSchedule.objects.get_or_create(every=600, period="seconds")
    page = admin.get(admin_url("django_celery_beat_periodictask_change", schedules.pk))

    admin.post(admin_url("django_celery_beat_periodictask_change", schedules.pk),
               {**form_data(page), "interval": every_ten_minutes.pk})

    schedules.refresh_from_db()
    assert schedules.interval == every_ten_minutes
    assert last_event("control.changed").data["changed"] == ["interval"]


# --- 5. A manager hands out the compliance role, alone and for good ----------------------------------


def test_a_manager_cannot_give_compliance_alone_or_for_good(demo, api_as):
    client = api_as(demo.mgr)
    body = {"user": "dev2", "role": "compliance", "team": "payments", "justification": "Audit season"}

    no_expiry = client.post("/api/v1/role-assignments/", body, format="json")
    requested = client.post("/api/v1/role-assignments/", {
        **body, "expires_at": (timezone.now() + timedelta(days=30)).isoformat()}, format="json")
    self_approved = client.post(f"/api/v1/role-assignments/{requested.json()['id']}/approve/")

    assert no_expiry.status_code == 400 and "expires_at" in no_expiry.json()
    assert requested.status_code == 201 and requested.json()["status"] == "pending"
    assert self_approved.status_code == 403
    assert [r["code"] for r in self_approved.json()["reasons"]] == ["four_eyes_grant"]
    assert not has_duty(demo.dev2, duties.VIEW_AUDIT)
