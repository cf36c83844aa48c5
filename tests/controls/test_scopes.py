"""Scopes mean what they say (RULES.md K6), and the superuser alone changes none of the rules: a duty
granted for one environment counts only there, what spans all needs an every-environment grant,
nobody resolves an alert about their own action; the detective controls' schedule and the signing
key are controls too."""
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from audit import seals
from compliance import alerts as audit_services
from audit.alerts import raise_alert
from audit.models import Alert, AuditEvent
from governance import services
from governance.controls.services import control_change, control_change_approve
from core.errors import Denied
from governance.models import ConflictRule, ControlChange, SoDException
from releases.models import ApprovalPolicy
from tests.controls.conftest import last_event


@pytest.fixture
def staging_security(demo, now):
    """rev2 holds security for staging only."""
    grant = services.role_grant(actor=demo.mgr, user=demo.rev2, role=demo.roles["security"], team=demo.payments,
                                environment=demo.staging, justification="Staging on-call",
                                expires_at=now + timedelta(days=10), at=now)
    services.role_assignment_approve(actor=demo.sec, assignment=grant, at=now)
    return demo.rev2


def test_security_for_one_environment_approves_grants_there_and_nowhere_else(demo, now, staging_security):
    production = services.role_grant(actor=demo.mgr, user=demo.dev2, role=demo.roles["reviewer"], team=demo.payments,
                                     environment=demo.production, justification="Cover",
                                     expires_at=now + timedelta(days=5), at=now)

    with pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=staging_security, assignment=production, at=now)

    assert refused.value.codes == ["missing_duty"]
    assert refused.value.messages() == [
        "Approving needs manage_roles in team payments or security_approve for production."]


def test_security_for_one_environment_changes_its_policy_only(demo, now, staging_security, nothing_written):
    staging = control_change(actor=staging_security, kind="releases.approvalpolicy",
                             target=ApprovalPolicy.objects.get(environment=demo.staging), values={"min_approvals": 2},
                             at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        control_change(actor=staging_security, kind="releases.approvalpolicy",
                       target=ApprovalPolicy.objects.get(environment=demo.production), values={"min_approvals": 3},
                       at=now)

    assert staging.status == "applied"
    assert refused.value.messages() == ["Changing this approval policy needs security_approve for production."]


def test_what_spans_every_environment_needs_an_every_environment_grant(demo, now, staging_security, nothing_written):
    rule = ConflictRule.objects.get(duty_a="approve", duty_b="deploy")

    with nothing_written(), pytest.raises(Denied) as refused:
        control_change(actor=staging_security, kind="governance.conflictrule", target=rule,
                       values={"description": "Approvers never deploy to production."}, at=now)

    assert refused.value.codes == ["missing_duty"]


def test_nobody_resolves_an_alert_about_their_own_action(demo):
    alert, _ = raise_alert("off_hours", subject="sec approved at 03:00", actor=demo.sec)
    sec2_alert, _ = raise_alert("off_hours", subject="rev approved at 03:00", actor=demo.rev)

    with pytest.raises(Denied) as refused:
        audit_services.alert_resolve(actor=demo.sec, alert=alert, resolution="It was me, on call.")
    resolved = audit_services.alert_resolve(actor=demo.sec, alert=sec2_alert, resolution="Paged incident.")

    assert refused.value.codes == ["own_alert"]
    assert Alert.objects.get(pk=alert.pk).status == Alert.Status.OPEN
    assert resolved.status == Alert.Status.RESOLVED


# --- The superuser alone, for the examples that needed a role ---------------------------------------


def test_the_superuser_alone_cannot_open_production_or_waive_separation(demo, now, nothing_written):
    policy = ApprovalPolicy.objects.get(environment=demo.production)
    weaker = control_change(actor=demo.admin, kind="releases.approvalpolicy", target=policy,
                            values={"min_approvals": 1, "require_interactive_signoff": False,
                                    "team_reviewer_required": False}, at=now)
    rule_off = control_change(actor=demo.admin, kind="governance.conflictrule",
                              target=ConflictRule.objects.get(duty_a="approve", duty_b="deploy"),
                              values={"is_active": False}, at=now)
    exception = services.sod_exception_request(actor=demo.admin, user=demo.rev, duty_a="approve", duty_b="deploy",
                                               environment=demo.production, justification="Cover",
                                               expires_at=now + timedelta(days=3), at=now)

    with pytest.raises(Denied) as own_policy:
        control_change_approve(actor=demo.admin, change=weaker, at=now)
    with pytest.raises(Denied) as own_rule:
        control_change_approve(actor=demo.admin, change=rule_off, at=now)
    with pytest.raises(Denied) as own_exception:
        services.sod_exception_approve(actor=demo.admin, exception=exception, at=now)
    with nothing_written(), pytest.raises(Denied) as zero:
        control_change(actor=demo.admin, kind="releases.approvalpolicy", target=policy, values={"min_approvals": 0},
                       at=now)

    assert (weaker.status, rule_off.status) == ("pending", "pending")
    assert own_policy.value.codes == ["four_eyes_control", "missing_duty"]
    assert own_rule.value.codes == ["four_eyes_control"]
    assert set(own_exception.value.codes) == {"four_eyes_exception", "missing_duty"}
    assert zero.value.codes == ["control_floor"]
    assert ApprovalPolicy.objects.get(pk=policy.pk).min_approvals == 2
    assert ConflictRule.objects.get(duty_a="approve", duty_b="deploy").is_active
    assert SoDException.objects.get(pk=exception.pk).status == "pending"


def test_the_superuser_alone_cannot_hand_out_compliance(demo, now):
    grant = services.role_grant(actor=demo.admin, user=demo.dev2, role=demo.roles["compliance"], team=demo.payments,
                                justification="Audit season", expires_at=now + timedelta(days=30), at=now)

    with pytest.raises(Denied) as refused:
        services.role_assignment_approve(actor=demo.admin, assignment=grant, at=now)

    assert grant.status == "pending"
    assert refused.value.codes == ["four_eyes_grant"]


# --- Schedules and the signing key --------------------------------------------------------------------


def test_a_reset_that_would_slow_a_detective_task_is_skipped_and_reported(demo, now):
    call_command("sync_schedules", stdout=StringIO())
    verify = PeriodicTask.objects.get(name="audit: verify the hash chain")
    every_ten_minutes, _ = IntervalSchedule.objects.get_or_create(every=600, period="seconds")
    control_change(actor=demo.admin, kind="django_celery_beat.periodictask", target=verify,
                   values={"interval": every_ten_minutes}, at=now)
    out, err = StringIO(), StringIO()

    call_command("sync_schedules", "--reset", stdout=out, stderr=err)

    verify.refresh_from_db()
    assert verify.interval == every_ten_minutes
    assert "audit: verify the hash chain: kept" in err.getvalue()
    assert not ControlChange.objects.filter(status="pending").exists()


def test_a_seal_signed_with_another_key_is_recorded_and_alerted(demo, settings, tmp_path):
    first = seals.seal()
    settings.SIGNING_KEY_FILE = tmp_path / "replacement.pem"
    settings.SIGNING_KEY_AUTOGENERATE = True
    raise_alert("filler", subject="something new to seal")
    second = seals.seal(at=timezone.now() + timedelta(hours=1))

    assert first.key_fingerprint != second.key_fingerprint
    event = last_event("signing_key.changed")
    assert event.data["before"] == {"key_fingerprint": first.key_fingerprint}
    assert event.data["after"] == {"key_fingerprint": second.key_fingerprint}
    assert AuditEvent.objects.filter(action="alert.raised", data__kind="signing_key_changed").exists()


def test_an_environment_is_raised_to_production_only_with_a_policy_that_meets_its_floors(demo, now,
                                                                                       nothing_written):
    """Staging auto-approves standard changes: as production it would deploy them without a person."""
    with nothing_written(), pytest.raises(Denied) as refused:
        control_change(actor=demo.admin, kind="governance.environment", target=demo.staging,
                       values={"tier": "production"}, at=now)

    assert refused.value.codes == ["control_floor"]
    assert "Raise staging's policy before its tier." in refused.value.messages()[0]
