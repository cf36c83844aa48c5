"""Evidence tells the truth about controls (RULES.md K7): a production deployment started while a
control concerning its environment was weaker than at the period's start is a ``control_weakened``
finding, and one decided under a policy below the framework's baseline is ``below_baseline``;
both count against the change-management controls, never as a clean row."""
from datetime import timedelta

import pytest

from compliance.evidence.writer import iso
from governance.controls.services import control_change, control_change_approve
from governance.models import Environment, ConflictRule
from releases.models import ApprovalPolicy
from tests.evidence.conftest import build_export, deploy_in, weakened_then_restored

POLICY = "releases.approvalpolicy"
DEPLOYMENTS = {"sox": ("production_deployments", "SOX ITGC-CM"), "iso27001": ("changes", "ISO 27001 A.8.32")}


def _rows(bundle, dataset) -> dict:
    return {r["deployment_id"]: r for r in bundle.json_rows(dataset)}


@pytest.mark.parametrize("framework", sorted(DEPLOYMENTS))
def test_the_deployment_made_while_the_policy_was_weakened_is_flagged(demo, period, bundle_of, sec2, framework):
    story = weakened_then_restored(demo, sec2, period)
    dataset, control_id = DEPLOYMENTS[framework]
    bundle = bundle_of(build_export(demo, framework, period))
    rows = _rows(bundle, dataset)

    for flagged in (story.at_weakening, story.between):
        (finding,) = rows[flagged.pk]["control_findings"]
        assert finding.startswith("control_weakened: approval policy production: approvals required from 2 to 1")
        assert f"control change #{story.weakening.pk}" in finding
        assert rows[flagged.pk]["sod_verdict"] == "pass"  # SoD held; the control did not
    for clean in (story.before, story.at_restore, story.after):
        assert rows[clean.pk]["control_findings"] == []
    csv_rows = {int(r["deployment_id"]): r for r in bundle.csv_rows(dataset)}
    assert csv_rows[story.between.pk]["control_findings"].startswith("control_weakened: approval policy production")
    assert csv_rows[story.after.pk]["control_findings"] == ""

    assert bundle.manifest["datasets"][dataset]["exception_kinds"]["control_weakened"] == 2
    control = next(c for c in bundle.manifest["controls"] if c["id"] == control_id)
    assert control["exception_kinds"][f"{dataset}: control_weakened"] == 2
    assert control["exceptions"] >= 2
    assert f"{dataset}: control_weakened: 2".encode() in bundle.members["report.html"]


def test_a_weakened_production_policy_does_not_flag_other_environments(demo, period, bundle_of, sec2):
    """The policy's scope is production: the staging deployments of the same artifacts (C8),
    made at the same moments, are not findings."""
    story = weakened_then_restored(demo, sec2, period)
    bundle = bundle_of(build_export(demo, "iso27001", period))

    staging = [r for r in bundle.json_rows("changes") if r["environment"] == "staging"]
    assert any(r["deploy_started_at"] == iso(story.between.started_at) for r in staging)
    assert all(r["control_findings"] == [] for r in staging)


def test_a_control_concerning_every_environment_flags_every_deployment_while_weaker(demo, period, bundle_of, sec2):
    """A conflict rule switched off (scope: every environment) for a day, then switched on again."""
    rule = ConflictRule.objects.filter(is_active=True).order_by("pk").first()
    off_at, on_at = period.middle, period.middle + timedelta(days=1)
    proposal = control_change(actor=demo.admin, kind="governance.conflictrule", target=rule,
                              values={"is_active": False}, at=off_at)
    control_change_approve(actor=demo.sec, change=proposal, at=off_at)
    _, while_off = deploy_in(demo, demo.production, off_at + timedelta(hours=2))
    rule.refresh_from_db()
    control_change(actor=demo.admin, kind="governance.conflictrule", target=rule, values={"is_active": True}, at=on_at)
    _, after = deploy_in(demo, demo.production, on_at + timedelta(hours=2))
    bundle = bundle_of(build_export(demo, "iso27001", period))
    rows = _rows(bundle, "changes")

    staging_while_off = [r for r in rows.values() if r["environment"] == "staging"
                         and r["deploy_started_at"] == iso(while_off.started_at)]
    for row in (rows[while_off.pk], *staging_while_off):
        (finding,) = row["control_findings"]
        assert finding.startswith(f"control_weakened: conflict rule {rule}: the rule switched off")
    assert rows[after.pk]["control_findings"] == []


@pytest.mark.parametrize("framework", sorted(DEPLOYMENTS))
def test_a_production_policy_below_the_baseline_is_a_finding(demo, period, bundle_of, framework):
    """Staging's policy auto-approves standard changes. The control door refuses to raise staging to
    the production tier with that policy (``control_floor``); raised around the door (data older
    than the floor, a database edit), its production deployments are decided under a policy below
    the framework's baseline, and the bundle says so however it got there."""
    Environment.objects.filter(pk=demo.staging.pk).update(tier="production")
    demo.staging.refresh_from_db()
    _, below = deploy_in(demo, demo.staging, period.middle, title="auto-approvable")
    _, meets = deploy_in(demo, demo.production, period.middle + timedelta(hours=1))
    dataset, control_id = DEPLOYMENTS[framework]
    bundle = bundle_of(build_export(demo, framework, period))
    rows = _rows(bundle, dataset)

    (finding,) = rows[below.pk]["control_findings"]
    assert finding.startswith("below_baseline: auto-approval of standard changes switched on")
    assert "baseline for production: at least one approval" in finding
    assert rows[below.pk]["policy_findings"] == []  # the policy itself was met: it asks too little
    assert rows[meets.pk]["control_findings"] == []
    assert bundle.manifest["datasets"][dataset]["exception_kinds"]["below_baseline"] >= 1
    control = next(c for c in bundle.manifest["controls"] if c["id"] == control_id)
    assert control["exception_kinds"][f"{dataset}: below_baseline"] >= 1


def test_a_window_lasts_until_the_control_is_as_strong_as_at_the_start(demo, period, bundle_of, sec2):
    """Weaker than at the period's start, not than before the last edit: tightening another field
    while the approvals stay lowered leaves the deployment after it a finding, naming the change
    that weakened the policy."""
    policy = ApprovalPolicy.objects.get(environment=demo.production)
    proposal = control_change(actor=demo.sec, kind=POLICY, target=policy, values={"min_approvals": 1},
                              at=period.middle)
    weakening = control_change_approve(actor=sec2, change=proposal, at=period.middle)
    policy.refresh_from_db()
    control_change(actor=demo.sec, kind=POLICY, target=policy, values={"review_sla_minutes": 60},
                   at=period.middle + timedelta(hours=1))
    _, later = deploy_in(demo, demo.production, period.middle + timedelta(hours=2))
    bundle = bundle_of(build_export(demo, "sox", period))

    (finding,) = _rows(bundle, "production_deployments")[later.pk]["control_findings"]
    assert finding.startswith("control_weakened: approval policy production: approvals required from 2 to 1")
    assert f"control change #{weakening.pk}, from {iso(period.middle)} to the end of the period" in finding
