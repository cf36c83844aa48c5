"""The inventory of controls is complete (RULES.md K1–K3), checked like the authorization matrix.

One declared table classifies every model registered in the admin (a control, or not and why),
every field of every control (a control field, or not and why) and every writable API endpoint.
A model, field or endpoint added later fails here until someone classifies it. Then every control
field is changed through the admin as an administrator would, with a value that weakens it where it
can be weakened: a weakening change must leave the row as it was and wait for a second person, who
applies it; any other change applies at once; each step is an audit event carrying that field's
value before and after.
"""
from datetime import time, timedelta

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.forms import BooleanField, ModelMultipleChoiceField, MultipleChoiceField, SplitDateTimeField
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from audit.models import AuditEvent, NotificationChannel, TimestampAuthority
from compliance.siem.models import SiemSink
from compliance.witnesses.models import Witness
from governance.controls import registry
from governance.controls.services import control_change
from governance.models import ConflictRule, ControlChange
from identity.models import GroupRoleMapping
from integrations.models import LinkedRepository, PlatformAccount
from releases.models import ApprovalPolicy, StandardChangeTemplate
from tests.factories import set_control
from tests.siem.receivers import self_signed
from tests.timestamps.tsa import make_authority

# Every model in the admin that is not a control, and why (a control is a registered kind).
NOT_CONTROLS = {
    "governance.roleassignment": "a grant: G1–G5, four-eyes for privileged ones, its own services",
    "governance.sodexception": "its own four-eyes flow: requested, then approved by security for its environment",
    "governance.apitoken": "issued by its owner only; revoking one is recorded",
    "governance.accessreview": "a campaign record (A1–A3)",
    "governance.accessreviewitem": "a decision record (A3)",
    "governance.controlchange": "the record of control changes itself, written only by the control service",
    "releases.changerequest": "a governed record (section 3)",
    "releases.deployment": "a governed record (section 3)",
    "audit.auditevent": "written only by audit.record",
    "audit.auditseal": "written only by the sealing task",
    "audit.alert": "raised by detectors, resolved through its service",
    "audit.outboxmessage": "the delivery queue, written by the application",
    "audit.evidenceexport": "an export record (L3)",
    "integrations.webhookdelivery": "a delivery received from a platform, stored once; read-only",
    "integrations.learntcontributor": "what a delivery said about who worked on a change; read-only, never removed",
    "integrations.protectionrequest": "a deployment job GitHub holds and Countersign's answers to it; read-only",
    "integrations.gitlabdeploymentapproval": "Countersign's own answer to a GitLab deployment waiting for approval, "
                                             "written by the worker only",
    "integrations.reporteddeployment": "a deployment a platform or deploy tool reported; written from its deliveries "
                                       "and reports only, read-only",
    "django_celery_beat.intervalschedule": "a schedule definition: add-only, never edited (a task using it is the control)",
    "django_celery_beat.crontabschedule": "a schedule definition: add-only, never edited",
    "django_celery_beat.solarschedule": "a schedule definition: add-only, never edited",
    "django_celery_beat.clockedschedule": "a schedule definition: add-only, never edited",
}

# Fields of a control that are not part of it, and why.
NOT_CONTROL_FIELDS = {
    "releases.freezewindow": {"created_by": "who declared it, set by the service from the proposer"},
    "releases.standardchangetemplate": {"created_by": "who proposed it, set by the service"},
    "auth.user": {
        "password": "nobody sets another person's; the owner sets it through a reset link (K5)",
        "last_login": "written by logging in",
        "date_joined": "written when the account is created",
        "groups": "not offered: duties come from role assignments only",
        "user_permissions": "derived by sync_permissions only",
    },
    "django_celery_beat.periodictask": {
        "last_run_at": "beat's own bookkeeping", "total_run_count": "beat's own bookkeeping",
        "date_changed": "beat's own bookkeeping",
    },
    "governance.team": {"members": "memberships, through the membership services"},
}

# Writable API endpoints and what governs them; a control is never written through the API except
# by the four-eyes step itself.
API_WRITES = {
    "POST /api/v1/access-review-items/{id}/decide/": "an access-review decision (A3)",
    "POST /api/v1/alerts/{id}/resolve/": "an alert's resolution (never one's own, K6)",
    "POST /api/v1/audit/cosignatures/": "a witness's cosignature, verified with the key of a registered witness",
    "POST /api/v1/change-requests/": "a change request (C1)",
    "PATCH /api/v1/change-requests/{id}/": "a change request (C3)",
    "POST /api/v1/change-requests/{id}/approve/": "a decision on a change (C2–C4)",
    "POST /api/v1/change-requests/{id}/cancel/": "a change request",
    "POST /api/v1/change-requests/{id}/deployments/": "a deployment (C5–C8)",
    "POST /api/v1/change-requests/{id}/reject/": "a decision on a change (C2, C4)",
    "POST /api/v1/change-requests/{id}/request-changes/": "a decision on a change, non-final (C2, C3)",
    "POST /api/v1/change-requests/{id}/withdraw/": "a change request, back to a draft by its author",
    "POST /api/v1/change-requests/{id}/re-review/": "a change request whose approvals expired, back to review",
    "POST /api/v1/change-requests/{id}/retry/": "a new deployment attempt after a failed one (C5–C8)",
    "POST /api/v1/change-requests/{id}/submit/": "a change request (C1)",
    "POST /api/v1/change-requests/{id}/source-links/": "a change's link to its PR or commit, by its author",
    "POST /api/v1/control-changes/{id}/approve/": "the four-eyes step of a control change (K3)",
    "POST /api/v1/control-changes/{id}/reject/": "the four-eyes step of a control change (K3)",
    "POST /api/v1/deployment-reports/": "a report of what a tool deployed (E2)",
    "POST /api/v1/deployments/{id}/finish/": "a deployment's outcome",
    "POST /api/v1/deployments/{id}/rollback/": "a deployment's rollback",
    "POST /api/v1/evidence-exports/": "an evidence export (L3)",
    "POST /api/v1/integrations/github/webhook": "a delivery, signed by GitHub with a linked repository's secret",
    "POST /api/v1/integrations/gitlab/webhook": "a delivery, with a linked repository's GitLab token",
    "POST /api/v1/evidence-exports/{id}/retry/": "an evidence export (L3)",
    "POST /api/v1/role-assignments/": "a grant (G1–G4)",
    "POST /api/v1/role-assignments/{id}/approve/": "a grant (G4)",
    "POST /api/v1/role-assignments/{id}/reject/": "a grant",
    "POST /api/v1/role-assignments/{id}/revoke/": "a grant (G5)",
}

def _witness_key(name: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.cosignature import vkey

    return vkey(name, Ed25519PrivateKey.generate().public_key())


WEAKER, STRONGER, NEUTRAL = "weaker", "stronger", "neutral"
SOON = timezone.now().replace(microsecond=0) + timedelta(days=3)

# One change per control field: the value posted (as the admin's form takes it; callables get the
# story), whether it weakens the control (None: refused, a floor or an impossible combination), and
# other fields it must come with. A control field with no sample fails; None is a field the admin
# never changes once set (a policy's environment) or can only set instead of another (schedules).
SAMPLES = {
    "releases.approvalpolicy": {
        "environment": None,  # read-only once created: a policy belongs to its environment
        "min_approvals": (1, WEAKER), "min_security_approvals": (1, STRONGER),
        "high_risk_security_approvals": (0, WEAKER), "team_reviewer_required": (False, WEAKER),
        "approval_ttl_hours": (None, WEAKER), "allow_auto_approve_standard": (True, None),  # a floor: refused
        "require_prior_environment": (None, WEAKER), "deploy_weekdays": ("1,2,3,4,5", STRONGER),
        "deploy_window_start": (time(9), STRONGER, {"deploy_window_end": time(17)}),
        "deploy_window_end": (time(17), STRONGER, {"deploy_window_start": time(9)}),
        "emergency_min_approvals": (2, STRONGER), "pir_due_hours": (96, WEAKER),
        "require_interactive_signoff": (False, WEAKER), "review_sla_minutes": (60, STRONGER),
    },
    "releases.freezewindow": {
        "name": ("Renamed freeze", NEUTRAL), "environments": (lambda d: [d.staging.pk], WEAKER),
        "starts_at": (SOON + timedelta(hours=1), WEAKER), "ends_at": (SOON + timedelta(days=9), STRONGER),
        "reason": ("Audit week", NEUTRAL),
    },
    "releases.standardchangetemplate": {
        "name": ("payments-api routine", NEUTRAL), "description": ("Dependency bumps only", NEUTRAL),
        "environment": (lambda d: d.development.pk, WEAKER), "max_risk": ("medium", WEAKER),
        "artifact_pattern": ("registry.example.com/payments*", WEAKER),
        "expires_at": (SOON + timedelta(days=362, hours=23), WEAKER), "active": (False, STRONGER),
    },
    "governance.environment": {
        "name": ("Live", NEUTRAL), "slug": ("live", NEUTRAL), "tier": ("staging", WEAKER), "order": (9, NEUTRAL),
        "time_zone": ("Asia/Tokyo", WEAKER),
    },
    "governance.team": {
        "name": ("Payments EU", NEUTRAL), "slug": ("payments-eu", NEUTRAL), "time_zone": ("UTC", WEAKER),
        "on_call_reviewers": (lambda d: [d.rev.pk], WEAKER),
    },
    "governance.role": {
        "name": ("Code reviewer", NEUTRAL), "slug": ("code-reviewer", NEUTRAL), "description": ("Reads code", NEUTRAL),
        "scope": ("environment_or_all", WEAKER), "is_privileged": (True, STRONGER),
        "duties": (["approve", "deploy"], WEAKER),
    },
    "governance.conflictrule": {
        "duty_a": ("security_approve", WEAKER), "duty_b": ("submit", WEAKER), "tier": ("", STRONGER),
        "description": ("Approvers never deploy", NEUTRAL), "is_active": (False, WEAKER),
    },
    "auth.user": {
        "username": ("developer", WEAKER), "email": ("dev@elsewhere.example", WEAKER), "first_name": ("Dana", NEUTRAL),
        "last_name": ("Vance", NEUTRAL), "is_active": (False, STRONGER), "is_staff": (True, WEAKER),
        "is_superuser": (True, WEAKER),
    },
    "audit.notificationchannel": {
        "name": ("Security pager", NEUTRAL), "kind": ("webhook", WEAKER), "team": ("payments", WEAKER),
        "target": ("security@elsewhere.example", WEAKER), "secret": ("a-new-hmac-key", WEAKER),
        "topics": ("alert", WEAKER), "events": ("deployment.*", STRONGER), "is_active": (False, WEAKER),
    },
    "integrations.linkedrepository": {
        "platform": ("gitlab", WEAKER), "full_name": ("Codertocat/Elsewhere", WEAKER),
        "team": (lambda d: d.identity.pk, WEAKER), "webhook_secret": ("a-new-webhook-secret", WEAKER),
        "is_active": (False, WEAKER),
    },
    "integrations.platformaccount": {
        "user": (lambda d: d.rev2.pk, WEAKER), "platform": ("gitlab", WEAKER), "login": ("someone-else", WEAKER),
    },
    "identity.grouprolemapping": {
        "group_name": ("cs-admins", WEAKER), "role": (lambda d: d.roles["operations"].pk, WEAKER),
        "team": (lambda d: d.identity.pk, WEAKER), "environment": (lambda d: d.production.pk, WEAKER),
        "is_active": (False, STRONGER),
    },
    "compliance.siemsink": {
        "name": ("SOC Splunk EU", NEUTRAL), "transport": ("https_json", WEAKER),
        "destination": ("https://siem.elsewhere.example/collector", WEAKER), "format": ("countersign", WEAKER),
        "token": ("a-new-hec-token", WEAKER), "secret": ("a-new-hmac-key", WEAKER),
        "ca_certificate": (lambda d: self_signed()[0], WEAKER), "actions": ("change_request.*", WEAKER),
        "batch_size": (50, NEUTRAL), "is_active": (False, WEAKER),
    },
    "audit.timestampauthority": {
        "name": ("Outside TSA EU", NEUTRAL), "url": ("https://tsa.elsewhere.example/tsr", WEAKER),
        "certificate": (lambda d: make_authority("Elsewhere TSA")[0], WEAKER), "hash_algorithm": ("sha512", STRONGER),
        "is_active": (False, WEAKER),
    },
    "compliance.witness": {
        "name": ("witness.elsewhere.example/w1", WEAKER, {"public_key": _witness_key("witness.elsewhere.example/w1")}),
        "public_key": (lambda d: _witness_key("witness.example.org/w1"), WEAKER), "is_active": (False, WEAKER),
    },
    "django_celery_beat.periodictask": {
        "name": ("chain check", NEUTRAL), "task": ("audit.tasks.seal_chain", WEAKER), "enabled": (False, WEAKER),
        "interval": (lambda d: IntervalSchedule.objects.get_or_create(every=7, period="days")[0].pk, WEAKER),
        "crontab": (lambda d: CrontabSchedule.objects.get_or_create(minute="0", hour="*", timezone="UTC")[0].pk, None),
        "solar": None, "clocked": None,  # the other schedule kinds: chosen instead of the interval, refused alone
        "one_off": (True, WEAKER), "start_time": (SOON, WEAKER), "expires": (SOON, WEAKER),
        "expire_seconds": (30, WEAKER), "queue": ("elsewhere", WEAKER), "exchange": ("elsewhere", WEAKER),
        "routing_key": ("elsewhere", WEAKER), "priority": (5, NEUTRAL), "args": ('["x"]', WEAKER),
        "kwargs": ('{"x": 1}', WEAKER), "headers": ('{"x": 1}', WEAKER), "description": ("Hourly", NEUTRAL),
    },
}


def _target(demo, kind_key):
    """The row of ``kind_key`` the admin edits: an existing one of the demo, or one made for it
    (only the one the case needs: each is a control change of its own)."""
    made = {
        "releases.freezewindow": lambda: set_control(
            by=demo.sec, control="releases.freezewindow", name="Quarter close", starts_at=SOON,
            ends_at=SOON + timedelta(days=2), reason="", environments=[demo.production, demo.staging]),
        "audit.notificationchannel": lambda: NotificationChannel.objects.get(pk=control_change(
            actor=demo.admin, kind="audit.notificationchannel", values={
                "name": "Security mail", "kind": "email", "target": "security@example.com",
                "topics": "alert,escalation"},
        ).target_id),
        "integrations.linkedrepository": lambda: LinkedRepository.objects.get(pk=control_change(
            actor=demo.admin, kind="integrations.linkedrepository", values={
                "platform": "github", "full_name": "Codertocat/Hello-World", "team": demo.payments,
                "webhook_secret": "s3cret", "is_active": True},
        ).target_id),
        "integrations.platformaccount": lambda: PlatformAccount.objects.get(pk=control_change(
            actor=demo.admin, kind="integrations.platformaccount",
            values={"user": demo.rev, "platform": "github", "login": "Codertocat"},
        ).target_id),
        "identity.grouprolemapping": lambda: GroupRoleMapping.objects.get(pk=set_control(
            by=demo.admin, second=demo.sec, control="identity.grouprolemapping", group_name="cs-reviewers",
            role=demo.roles["reviewer"], team=demo.payments, environment=demo.staging, is_active=True).pk),
        "compliance.siemsink": lambda: SiemSink.objects.get(pk=control_change(
            actor=demo.admin, kind="compliance.siemsink", values={
                "name": "SOC Splunk", "transport": "https_hec", "format": "ocsf", "token": "hec-token",
                "secret": "hmac", "destination": "https://splunk.example.com:8088/services/collector/event"},
        ).target_id),
        "audit.timestampauthority": lambda: TimestampAuthority.objects.get(pk=control_change(
            actor=demo.admin, kind="audit.timestampauthority", values={
                "name": "Outside TSA", "url": "https://tsa.example.com/tsr", "certificate": make_authority()[0]},
        ).target_id),
        "compliance.witness": lambda: Witness.objects.get(pk=control_change(
            actor=demo.admin, kind="compliance.witness",
            values={"name": "witness.example.org/w1", "public_key": _witness_key("witness.example.org/w1")},
        ).target_id),
        "releases.approvalpolicy": lambda: ApprovalPolicy.objects.get(environment=demo.production),
        "releases.standardchangetemplate": lambda: StandardChangeTemplate.objects.get(),
        "governance.environment": lambda: demo.production,
        "governance.team": lambda: demo.payments,
        "governance.role": lambda: demo.roles["reviewer"],
        "governance.conflictrule": lambda: ConflictRule.objects.get(duty_a="approve", duty_b="deploy"),
        "auth.user": lambda: demo.dev,
        "django_celery_beat.periodictask": lambda: _schedule(),
    }
    return made[kind_key]()


def _schedule():
    call_command("sync_schedules", stdout=open("/dev/null", "w"))
    return PeriodicTask.objects.get(name="audit: verify the hash chain")


# --- The table covers everything ------------------------------------------------------------------


def test_every_model_in_the_admin_is_classified():
    registered = {model._meta.label_lower for model in admin.site._registry}
    controls = {kind.key for kind in registry.kinds()}

    assert sorted(registered - controls - set(NOT_CONTROLS)) == [], "admin models nobody classified"
    assert sorted(controls - registered) == [], "controls with no admin page"
    assert sorted(controls & set(NOT_CONTROLS)) == []
    assert sorted(set(SAMPLES) ^ controls) == [], "controls without samples"


def test_every_field_of_every_control_is_classified():
    for kind in registry.kinds():
        meta = kind.model._meta
        fields = {f.name for f in [*meta.concrete_fields, *meta.many_to_many]} - {meta.pk.name}
        declared = set(kind.fields) | set(NOT_CONTROL_FIELDS.get(kind.key, {}))
        assert sorted(fields - declared) == [], f"{kind.key}: fields nobody classified"
        assert sorted(set(kind.fields) & set(NOT_CONTROL_FIELDS.get(kind.key, {}))) == []
        assert sorted(set(kind.all_fields) ^ set(SAMPLES[kind.key])) == [], f"{kind.key}: fields without samples"


def test_every_writable_api_endpoint_is_classified():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    writes = {f"{method.upper()} {path}" for path, operations in schema["paths"].items() for method in operations
              if method in ("post", "put", "patch", "delete")}

    assert sorted(writes ^ set(API_WRITES)) == [], "writable endpoints nobody classified (or gone)"


# --- Every control field, changed through the admin -----------------------------------------------


def _post_value(form, name, value, data):
    key, field = form.add_prefix(name), form.fields[name]
    if isinstance(field, SplitDateTimeField):
        data[f"{key}_0"] = value.strftime("%Y-%m-%d") if value else ""
        data[f"{key}_1"] = value.strftime("%H:%M:%S") if value else ""
        data.pop(key, None)
    elif isinstance(field, BooleanField):
        data.pop(key, None)
        if value:
            data[key] = "on"
    elif isinstance(field, (MultipleChoiceField, ModelMultipleChoiceField)):
        data[key] = list(value)
    else:
        data[key] = "" if value is None else value


def _page_data(page):
    """The change page re-submitted as rendered: the form and every inline formset."""
    form, data = page.context["adminform"].form, {"_save": "Save"}
    forms = [form]
    for inline in page.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    for each in forms:
        for name in each.fields:
            _post_value(each, name, each[name].value(), data)
    return form, data


# A weakening is named by the field it is about, or by what several fields make together.
WEAKENING_FIELD = {"interval": "schedule", "crontab": "schedule"}

CASES = [(key, name) for key, fields in SAMPLES.items() for name, sample in fields.items() if sample is not None]


@pytest.mark.parametrize("kind_key, field", CASES, ids=[f"{k}.{f}" for k, f in CASES])
def test_a_control_field_changed_in_the_admin_is_on_the_chain_and_four_eyes_when_weaker(
        demo, client_as, kind_key, field, django_capture_on_commit_callbacks):
    kind = registry.get(kind_key)
    target = _target(demo, kind_key)
    value, effect, *extra = SAMPLES[kind_key][field]
    value = value(demo) if callable(value) else value
    before = kind.snapshot(target)
    model = kind.model._meta
    url = reverse(f"admin:{model.app_label}_{model.model_name}_change", args=[target.pk])
    client = client_as(demo.admin)
    form, data = _page_data(client.get(url))
    _post_value(form, field, value, data)
    for name, other in (extra[0] if extra else {}).items():
        _post_value(form, name, other, data)
    latest = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    events = AuditEvent.objects.filter(sequence__gt=latest, action__startswith="control.")
    after = kind.snapshot(kind.model._default_manager.get(pk=target.pk))

    if effect is None:  # a floor or an impossible combination: refused, nothing written
        assert response.status_code == 200 and response.context["adminform"].form.errors
        assert (after, events.count()) == (before, 0)
        return
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    [event] = events
    assert field in event.data["changed"]
    assert event.data["before"][field] == before[field]
    if effect == WEAKER:
        assert event.action == "control.proposed" and after == before
        proposal = ControlChange.objects.get(pk=event.data["control_change"])
        assert WEAKENING_FIELD.get(field, field) in {w["field"] for w in proposal.weakening}
        client_as(demo.sec).post(reverse("admin:governance_controlchange_changelist"),
                                 {"action": "approve_selected", "_selected_action": [proposal.pk], "index": 0})
        after = kind.snapshot(kind.model._default_manager.get(pk=target.pk))
        approved = AuditEvent.objects.get(sequence__gt=latest, action="control.approved")
        assert approved.actor == demo.sec and approved.data["after"][field] == after[field]
    else:
        assert event.action == "control.changed" and event.data["weakening"] == []
    assert after[field] != before[field]
    assert event.data["after"][field] == after[field]
