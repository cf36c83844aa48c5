"""Issue 14 class 9a, C9: standard changes come from a catalogue. A change is standard only while an
active, unexpired standard-change template of its environment covers its risk and its artifact;
the author's label alone lowers no bar. The demo's catalogue holds one template: payments-api
artifacts (``registry.example.com/payments-api*``), low risk, staging."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder

from audit.models import AuditEvent
from core.errors import Denied
from governance.controls.services import control_change, control_change_approve
from governance.models import ControlChange
from releases import demo as release_demo, selectors, services
from releases.models import ApprovalPolicy, ChangeRequest, Deployment, StandardChangeTemplate
from releases.policy import evaluate
from tests.factories import set_control
from tests.releases.stories import deploy, events_for, pending, reload

S = ChangeRequest.State


def demo_template() -> StandardChangeTemplate:
    return StandardChangeTemplate.objects.get(name=release_demo.TEMPLATE["name"])


def save(demo, actor, template, at, **changes):
    """A change to the catalogue through the control door (RULES.md section 8): a weakening one is
    approved by a second person (the administrator, or security when the administrator proposed)."""
    change = control_change(actor=actor, kind="releases.standardchangetemplate", target=template, values=changes,
                            at=at)
    if change is not None and change.status == ControlChange.Status.PENDING:
        control_change_approve(actor=demo.sec if actor == demo.admin else demo.admin, change=change, at=at)
    return StandardChangeTemplate.objects.get(pk=template.pk)


def standard(demo, at, **fields):
    return pending(demo, at, environment=fields.pop("environment", demo.staging), change_type="standard",
                   risk=fields.pop("risk", "low"), **fields)


def test_a_change_the_catalogue_covers_is_approved_by_the_policy(demo, now):
    cr = standard(demo, now)

    assert cr.state == S.APPROVED
    [approval] = cr.approvals.all()
    assert approval.via == "auto" and release_demo.TEMPLATE["name"] in approval.comment


def test_the_authors_label_alone_is_reviewed_like_a_normal_change(demo, now):
    """ledger:7 is no payments-api artifact: no template covers it, whatever the author says."""
    cr = standard(demo, now, artifact="registry.example.com/ledger:7")

    assert (cr.state, cr.approvals.count()) == (S.PENDING, 0)
    assert events_for(cr)[-1].data["auto_approved"] is False
    gate = evaluate(selectors.policy_context(selectors.change_request_for_decision(cr.pk), demo.rev, at=now),
                    "approve", now)
    assert gate.requirements["standard_template"] is None


@pytest.mark.parametrize("change", [
    {"active": False},
    {"expires_at": "past"},
    {"environment": "development"},
    {"artifact_pattern": "registry.example.com/payments-webhooks*"},
], ids=["inactive", "expired", "other-environment", "other-artifacts"])
def test_a_template_that_does_not_cover_the_change_approves_nothing(demo, now, change):
    template = demo_template()
    if change.get("expires_at") == "past":
        save(demo, demo.sec, template, now - timedelta(days=2), expires_at=now - timedelta(days=1))
    elif "environment" in change:
        save(demo, demo.sec, template, now, environment=demo.development)
    else:
        save(demo, demo.sec, template, now, **change)

    cr = standard(demo, now)

    assert (cr.state, cr.approvals.count()) == (S.PENDING, 0)


def test_a_template_covers_risks_up_to_its_own(demo, now):
    assert standard(demo, now, risk="medium").state == S.PENDING  # the demo template: low only
    save(demo, demo.sec, demo_template(), now, max_risk="medium")
    medium = standard(demo, now, risk="medium")

    assert medium.state == S.PENDING, "C9 approves low-risk changes only"
    gate = evaluate(selectors.policy_context(selectors.change_request_for_decision(medium.pk), demo.rev, at=now),
                    "approve", now)
    assert gate.requirements["standard_template"] == release_demo.TEMPLATE["name"]


def test_switching_a_template_off_stops_what_it_approved(demo, now, nothing_written):
    """The policy's own approval counts only while the catalogue still covers the change."""
    cr = standard(demo, now)
    save(demo, demo.sec, demo_template(), now, active=False)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=reload(cr), at=now)

    assert refused.value.codes == ["approvals_insufficient"]


def test_a_staged_standard_change_does_not_skip_human_review_in_production(demo, now):
    """Staging-first (C8) asks that the artifact ran in staging; an auto-approved staging deployment
    says that much. It never stands for review: even where production's policy asks no approval and
    a template covers the change, production waits for a person (K4, ``control_floor``)."""
    staged = standard(demo, now)
    deploy(demo, staged, now)
    # Below K4's configuration floor (control_floor): only data written around the control door, or
    # older than it, holds such a policy; the engine's floor still stands.
    ApprovalPolicy.objects.filter(environment=demo.production).update(
        min_approvals=0, allow_auto_approve_standard=True, team_reviewer_required=False,
        require_interactive_signoff=False)
    set_control(by=demo.sec, second=demo.admin, control="releases.standardchangetemplate",
                name="payments-api routine change (production)", environment=demo.production,
                artifact_pattern="registry.example.com/payments-api*", expires_at=now + timedelta(days=30))

    cr = standard(demo, now, environment=demo.production, artifact=staged.artifact)

    assert cr.state == S.PENDING, "the policy approved it, but production needs a person's approval"
    assert [a.via for a in cr.approvals.all()] == ["auto"]
    with pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=now)
    assert refused.value.codes == ["not_approved"]
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, revision=cr.revision, at=now)
    assert cr.state == S.APPROVED
    assert isinstance(services.deployment_start(actor=demo.ops, change_request=cr, at=now), Deployment)


# --- The catalogue's one door ----------------------------------------------------------------------


def events_for_template(template):
    return list(AuditEvent.objects.filter(target_type="releases.standardchangetemplate",
                                          target_id=str(template.pk)).order_by("sequence"))


def test_saving_a_template_records_every_value_before_and_after(demo, now):
    template = demo_template()
    before_expiry = template.expires_at

    save(demo, demo.sec, template, now, max_risk="medium", expires_at=now + timedelta(days=60))

    *_, proposed, event = [e for e in events_for_template(template) if e.action in ("control.proposed",
                                                                                     "control.approved")]
    assert (proposed.actor, event.actor) == (demo.sec, demo.admin)
    assert event.data["after"]["environment"] == "staging"
    assert event.data["changed"] == ["max_risk", "expires_at"]
    assert (event.data["before"]["max_risk"], event.data["after"]["max_risk"]) == ("low", "medium")
    assert event.data["before"]["expires_at"] == DjangoJSONEncoder().default(before_expiry)
    assert event.data["after"]["expires_at"] == DjangoJSONEncoder().default(now + timedelta(days=60))
    assert event.data["after"]["artifact_pattern"] == release_demo.TEMPLATE["artifact_pattern"]
    created = AuditEvent.objects.get(action="control.approved", data__kind="releases.standardchangetemplate",
                                     data__operation="create", target_id=str(template.pk))
    assert created.data["before"] is None and created.data["after"]["name"] == release_demo.TEMPLATE["name"]


@pytest.mark.parametrize("actor", ["rev", "mgr", "dev"])
def test_only_security_and_administrators_change_the_catalogue(demo, now, actor):
    template = demo_template()

    with pytest.raises(Denied) as refused:
        save(demo, getattr(demo, actor), template, now, max_risk="high")

    assert refused.value.codes == ["missing_duty"]
    assert demo_template().max_risk == "low"


@pytest.mark.parametrize("pattern", ["*", "*payments-api*", "registry*", "[a-z]*:1"])
def test_a_pattern_names_the_image_before_any_wildcard(demo, now, pattern):
    with pytest.raises(ValidationError) as refused:
        save(demo, demo.sec, demo_template(), now, artifact_pattern=pattern)

    assert set(refused.value.message_dict) == {"artifact_pattern"}


@pytest.mark.parametrize("days", [0, 367])
def test_an_active_template_expires_within_a_year(demo, now, days):
    with pytest.raises(ValidationError) as refused:
        save(demo, demo.sec, demo_template(), now, expires_at=now + timedelta(days=days))

    assert set(refused.value.message_dict) == {"expires_at"}
