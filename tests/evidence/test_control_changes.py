"""Every bundle holds the period's control changes (RULES.md K7): who proposed each, who approved it,
the values before and after, when; an applied weakening change is flagged for the auditor, and
one that took effect without an independent second person (written around the control door) is
the tamper finding ``unapproved_weakening``. The SOX and ISO reports say who changed the controls
and who approved."""
import json
from datetime import timedelta

import pytest

from compliance.evidence.writer import iso
from governance.controls.services import control_change, control_change_reject, control_changes_expire_due
from governance.models import ControlChange
from releases.models import ApprovalPolicy
from tests.evidence.conftest import build_export, weakened_then_restored

CONTROLS = {
    "sox": {"SOX ITGC-CM", "SOX ITGC-AC"},
    "hipaa": {"HIPAA 164.308(a)(1)(ii)(D)", "HIPAA 164.308(a)(4)"},
    "iso27001": {"ISO 27001 A.5.3", "ISO 27001 A.5.15", "ISO 27001 A.8.32"},
}


@pytest.mark.parametrize("framework", sorted(CONTROLS))
def test_every_bundle_shows_both_steps_with_proposer_approver_and_values(demo, period, bundle_of, sec2, framework):
    story = weakened_then_restored(demo, sec2, period)
    bundle = bundle_of(build_export(demo, framework, period))

    rows = {r["control_change_id"]: r for r in bundle.json_rows("control_changes")}
    assert set(rows) == {story.weakening.pk, story.restore.pk}
    weakening, restore = rows[story.weakening.pk], rows[story.restore.pk]
    assert (weakening["control"], weakening["kind"], weakening["operation"]) == (
        "approval policy production", "releases.approvalpolicy", "update")
    assert (weakening["proposed_by"], weakening["decided_by"], weakening["status"]) == ("sec", "sec2", "applied")
    assert weakening["proposed_at"] == iso(period.middle)
    assert weakening["applied_at"] == weakening["decided_at"] == iso(period.middle + timedelta(hours=1))
    assert weakening["changed"] == ["min_approvals"]
    assert weakening["weakening"] == [{"field": "min_approvals", "message": "approvals required from 2 to 1"}]
    assert (weakening["before"]["min_approvals"], weakening["after"]["min_approvals"]) == (2, 1)
    assert weakening["scope"] == "production"
    assert weakening["findings"] == ["weakened_control"]
    assert (restore["proposed_by"], restore["decided_by"], restore["weakening"]) == ("sec", None, [])
    assert (restore["before"]["min_approvals"], restore["after"]["min_approvals"]) == (1, 2)
    assert restore["findings"] == []

    cells = {int(r["control_change_id"]): r for r in bundle.csv_rows("control_changes")}
    assert json.loads(cells[story.weakening.pk]["before"])["min_approvals"] == 2  # compact JSON text in the CSV
    assert json.loads(cells[story.weakening.pk]["after"])["min_approvals"] == 1
    assert cells[story.weakening.pk]["decided_by"] == "sec2"

    summary = bundle.manifest["datasets"]["control_changes"]
    assert summary["exception_kinds"] == {"weakened_control": 1, "unapproved_weakening": 0}
    assert set(summary["controls"]) == CONTROLS[framework]


def test_the_population_is_what_was_proposed_decided_applied_or_expired_in_the_period(demo, period, bundle_of,
                                                                                      sec2):
    policy = ApprovalPolicy.objects.get(environment=demo.production)
    earlier = control_change(actor=demo.sec, kind="releases.approvalpolicy", target=policy,
                             values={"min_approvals": 3}, at=period.start_at - timedelta(days=2))
    lapsed = control_change(actor=demo.sec, kind="releases.approvalpolicy", target=policy,
                            values={"min_approvals": 2}, at=period.before_start)  # expires 72 hours later
    later = period.start_at + timedelta(days=4)
    assert control_changes_expire_due(at=later) == 1
    rejected = control_change(actor=demo.sec, kind="releases.approvalpolicy", target=policy,
                              values={"team_reviewer_required": False}, at=later)
    control_change_reject(actor=sec2, change=rejected, comment="Not now", at=later + timedelta(hours=1))
    waiting = control_change(actor=demo.sec, kind="releases.approvalpolicy", target=policy,
                             values={"min_approvals": 2}, at=period.end_last)
    bundle = bundle_of(build_export(demo, "sox", period))

    rows = {r["control_change_id"]: r for r in bundle.json_rows("control_changes")}
    assert set(rows) == {lapsed.pk, rejected.pk, waiting.pk}
    assert earlier.pk not in rows
    assert (rows[lapsed.pk]["status"], rows[lapsed.pk]["activity_in_period"]) == ("expired", ["expired"])
    assert (rows[rejected.pk]["status"], rows[rejected.pk]["decided_by"]) == ("rejected", "sec2")
    assert (rows[waiting.pk]["status"], rows[waiting.pk]["decided_by"]) == ("pending", None)
    assert all(r["findings"] == [] for r in rows.values())  # nothing weaker took effect


def test_a_weakening_applied_without_an_independent_second_person_is_the_tamper_finding(demo, period, bundle_of,
                                                                                        sec2):
    """The control door never applies such a change; rows edited around it are what this catches."""
    story = weakened_then_restored(demo, sec2, period)
    ControlChange.objects.filter(pk=story.weakening.pk).update(decided_by=demo.sec)
    unapproved = ControlChange.objects.create(
        kind="governance.conflictrule", operation="update", target_id="1", target_repr="conflict rule x",
        scope={"environments": [], "everywhere": True, "team": None}, before={"is_active": True},
        after={"is_active": False}, changed=["is_active"],
        weakening=[{"field": "is_active", "message": "the rule switched off"}], status=ControlChange.Status.APPLIED,
        proposed_by=demo.admin, proposed_at=period.middle, applied_at=period.middle,
    )
    own_account = ControlChange.objects.create(
        kind="auth.user", operation="update", target_id=str(demo.dev.pk), target_repr="account dev",
        scope={"environments": [], "everywhere": True, "team": None}, subject=demo.dev, before={"is_staff": False},
        after={"is_staff": True}, changed=["is_staff"],
        weakening=[{"field": "is_staff", "message": "admin access (staff) switched on"}],
        status=ControlChange.Status.APPLIED, proposed_by=demo.admin, proposed_at=period.middle, decided_by=demo.dev,
        decided_at=period.middle, applied_at=period.middle,
    )
    retired = ControlChange.objects.create(  # a kind this version no longer knows: listed, not judged
        kind="retired.control", operation="update", target_id="7", target_repr="retired control",
        scope={"environments": ["production"]}, before={"on": True}, after={"on": False}, changed=["on"],
        weakening=[{"field": "on", "message": "switched off"}], status=ControlChange.Status.APPLIED,
        proposed_by=demo.admin, proposed_at=period.middle, decided_by=demo.sec, decided_at=period.middle,
        applied_at=period.middle,
    )
    bundle = bundle_of(build_export(demo, "iso27001", period))

    rows = {r["control_change_id"]: r for r in bundle.json_rows("control_changes")}
    assert rows[retired.pk]["findings"] == ["weakened_control"]
    assert rows[story.weakening.pk]["findings"] == ["weakened_control", "unapproved_weakening (approved by its proposer)"]
    assert rows[unapproved.pk]["findings"] == ["weakened_control", "unapproved_weakening (applied with no second person)"]
    assert rows[own_account.pk]["findings"] == ["weakened_control",
                                                "unapproved_weakening (approved by the account it concerns)"]
    assert rows[own_account.pk]["subject"] == "dev"
    assert rows[story.restore.pk]["findings"] == []
    assert bundle.manifest["datasets"]["control_changes"]["exception_kinds"]["unapproved_weakening"] == 3
    segregation = next(c for c in bundle.manifest["controls"] if c["id"] == "ISO 27001 A.5.3")
    assert segregation["exception_kinds"]["control_changes: unapproved_weakening"] == 3
    assert "control_changes: weakened_control" not in segregation["exception_kinds"]


@pytest.mark.parametrize("framework", ["sox", "iso27001"])
def test_the_report_says_who_changed_the_controls_and_who_approved(demo, period, bundle_of, sec2, framework):
    stronger = control_change(actor=demo.sec, kind="releases.approvalpolicy",
                              target=ApprovalPolicy.objects.get(environment=demo.production),
                              values={"high_risk_security_approvals": 2}, at=period.start_at + timedelta(hours=1))
    story = weakened_then_restored(demo, sec2, period)
    report = bundle_of(build_export(demo, framework, period)).members["report.html"].decode()

    section = report[report.index("<h2>Control changes"):report.index("<h2>Datasets")]
    assert "3 changes to the controls" in section
    weakening_at = section.index(f'<td class="num">{story.weakening.pk}</td>')
    stronger_at = section.index(f'<td class="num">{stronger.pk}</td>')
    restore_at = section.index(f'<td class="num">{story.restore.pk}</td>')
    assert weakening_at < stronger_at < restore_at  # weakening changes first, then in the order proposed
    weakening_row = section[weakening_at:stronger_at]
    assert "approval policy production" in weakening_row
    assert "<code>min_approvals</code>: 2 → 1" in weakening_row
    assert "approvals required from 2 to 1" in weakening_row
    assert "<td>sec<br>" in weakening_row and "approved by sec2" in weakening_row
    assert "none needed (applied at once)" in section[restore_at:]


def test_a_period_without_control_changes_says_so(demo, period, bundle_of):
    bundle = bundle_of(build_export(demo, "sox", period))
    assert bundle.json_rows("control_changes") == []
    assert "No control was changed in the period." in bundle.members["report.html"].decode()
