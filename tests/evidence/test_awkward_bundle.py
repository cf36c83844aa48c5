"""A bundle built on awkward data, on either database: every rendering rule — NULLs, lists,
unicode and emoji, quotes, commas, line breaks, values starting with = + - @ tab or CR,
microsecond and whole-second times — and every column the deployment rows take from their
decision records or learn later: SoD exception and violation (an approval written around the
services after the decision), a policy edit in the middle of the period, an emergency change with
its post-implementation review and one overdue, deployments made while a production policy and a
conflict rule (every environment) were weakened, and ones under a policy below the baseline.

(Until issue 15 PostgreSQL rendered the deployment and grant datasets in SQL, with the approval
rules copied into the statement, and this test compared its bytes with Python's. The verdicts
now come from the stored decision records, and the SQL rendering is gone: there is one path.)"""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from governance import duties, services as governance
from governance.controls.services import control_change, control_change_approve
from governance.models import ConflictRule, Environment, Role, RoleAssignment
from releases import services as releases
from releases.models import Approval, ApprovalPolicy, ChangeRequest, Deployment, RevisionContributor
from tests.evidence.conftest import build_export, deploy_in
from tests.factories import set_control

DEPLOYMENTS = {"sox": "production_deployments", "iso27001": "changes"}
AWKWARD = [
    '=HYPERLINK("http://x","y")', "+1 call", "-5", "@SUM(A1)", "\tindented", "\rreturn first",
    'say "hi", then\r\nleave', "emoji 🚀 ünïcödé — “quotes”", "trailing backslash \\", "a; b", "",
    "\x0bvertical tab, \x08backspace\x0cform feed\x1f\x7f", "tab\tinside \\n not a line break",
]


def _seed(demo, period):
    at = period.middle.replace(microsecond=0)
    user_model = get_user_model()
    weird = user_model.objects.create_user(username="-zoë🚀", password="x", email="z@example.org")
    # An SoD exception held by rev2 while approving (verdict "exception").
    exception = governance.sod_exception_request(
        actor=demo.mgr, user=demo.rev2, duty_a=duties.APPROVE, duty_b=duties.DEPLOY, environment=demo.production,
        justification="cover, \"weekend\"\nsecond line", expires_at=at + timedelta(days=20), at=at - timedelta(hours=3),
    )
    governance.sod_exception_approve(actor=demo.sec, exception=exception, at=at - timedelta(hours=3))
    grant = governance.role_grant(
        actor=demo.mgr, user=demo.rev2, role=Role.objects.get(slug="operations"), team=demo.payments,
        environment=demo.production, justification="=weekend, on call", expires_at=at + timedelta(days=10),
        at=at - timedelta(hours=2, microseconds=-7),
    )
    governance.role_assignment_approve(actor=demo.sec, assignment=grant, at=at - timedelta(hours=2))
    flagged, _ = deploy_in(demo, demo.production, at, title=AWKWARD[0], approvers=(demo.rev, demo.rev2))
    # Changes with awkward text in every free-text column, one per value, some with a contributor.
    changes = []
    for i, value in enumerate(AWKWARD[1:]):
        cr, deployment = deploy_in(demo, demo.production, at + timedelta(minutes=i + 1, microseconds=i * 37),
                                   title=value or "x")
        ChangeRequest.objects.filter(pk=cr.pk).update(ticket_url=value, title=value)
        Deployment.objects.filter(pk=deployment.pk).update(pipeline_url=value[::-1], artifact=value + "@sha")
        if i % 3 == 0:
            # Listed in revision 1 (weird) and in revisions 1 and 2 (dev2), written around the
            # services: the bundle lists each person once, whichever revisions listed them.
            cr.contributors.add(demo.dev2)
            RevisionContributor.objects.bulk_create([
                RevisionContributor(change_request=cr, revision=1, user=weird),
                RevisionContributor(change_request=cr, revision=1, user=demo.dev2),
                RevisionContributor(change_request=cr, revision=2, user=demo.dev2),
            ])
        changes.append(cr)
    # A violation: the deployer also approved (written around the services).
    _, violated = deploy_in(demo, demo.production, at + timedelta(hours=1))
    Approval.objects.create(
        change_request_id=violated.change_request_id, reviewer=demo.ops, decision=Approval.Decision.APPROVED,
        revision=violated.revision, artifact=violated.artifact, via=Approval.Via.API, created_at=at + timedelta(hours=1),
    )
    # Emergency changes: one reviewed after its due time, one never reviewed (overdue).
    # The production policy weakened (proposed by the administrator, approved by security) around the
    # next deployment, and a conflict rule (every environment) switched off around the one after.
    policy = ApprovalPolicy.objects.get(environment=demo.production)
    weakening = control_change(actor=demo.admin, kind="releases.approvalpolicy", target=policy,
                               values={"min_approvals": 1}, at=at + timedelta(hours=1, minutes=30))
    control_change_approve(actor=demo.sec, change=weakening, at=at + timedelta(hours=1, minutes=30, microseconds=3))
    # sec's sign-off confirms the emergency's single approval (C10) and holds no exception: "pass".
    reviewed, _ = deploy_in(demo, demo.production, at + timedelta(hours=2), change_type="emergency",
                            approvers=(demo.sec,))
    control_change(actor=demo.admin, kind="releases.approvalpolicy", target=policy, values={"min_approvals": 2},
                   at=at + timedelta(hours=2, minutes=15))
    rule = ConflictRule.objects.filter(is_active=True).order_by("pk").first()
    switched_off = control_change(actor=demo.admin, kind="governance.conflictrule", target=rule,
                                  values={"is_active": False}, at=at + timedelta(hours=2, minutes=50))
    control_change_approve(actor=demo.sec, change=switched_off, at=at + timedelta(hours=2, minutes=50))
    ChangeRequest.objects.filter(pk=reviewed.pk).update(risk=ChangeRequest.Risk.HIGH)
    reviewed.refresh_from_db()
    releases.change_request_review_pir(actor=demo.rev2, change_request=reviewed, notes="ok, fine",
                                       at=(reviewed.pir_due_at or at) + timedelta(hours=1))
    deploy_in(demo, demo.production, at + timedelta(hours=3), change_type="emergency")
    rule.refresh_from_db()
    control_change(actor=demo.admin, kind="governance.conflictrule", target=rule, values={"is_active": True},
                   at=at + timedelta(hours=3, minutes=10))
    # The production policy is edited in the middle of the period: later deployments fall short.
    set_control(ApprovalPolicy.objects.get(environment=demo.production), by=demo.admin,
                min_approvals=3, min_security_approvals=1, team_reviewer_required=True)
    latest = ApprovalPolicy.history.filter(environment_id=demo.production.pk).order_by("-history_id").first()
    ApprovalPolicy.history.filter(environment_id=demo.production.pk).exclude(history_id=latest.history_id).update(
        history_date=period.start_at - timedelta(days=1))
    ApprovalPolicy.history.filter(history_id=latest.history_id).update(history_date=at + timedelta(hours=2, minutes=30))
    # Grants: a revoked one with an awkward reason, one for every environment, a self-granted one.
    plain = governance.role_grant(
        actor=demo.mgr, user=demo.dev2, role=Role.objects.get(slug="reviewer"), team=demo.payments,
        environment=demo.staging, justification="\r\nstarts with a line break", at=at + timedelta(hours=4),
    )
    governance.role_assignment_revoke(actor=demo.mgr, assignment=plain, reason="@left, \"moved\" 🚀",
                                      at=at + timedelta(hours=5, microseconds=1))
    RoleAssignment.objects.filter(pk=plain.pk).update(user=weird, requested_by=weird, environment=None)
    # A grant whose only awkward value is its first string (the grantee's name starts with "-"),
    # written around the services (weird is in no team).
    RoleAssignment.objects.create(
        user=weird, role=Role.objects.get(slug="reviewer"), team=demo.payments, environment=demo.staging,
        justification="plain", status=RoleAssignment.Status.PENDING, requested_by=demo.mgr,
        created_at=at + timedelta(hours=6),
    )
    # Staging (whose policy auto-approves) raised to the production tier around the control door,
    # which refuses it (control_floor): its deployments are now production ones, decided under a
    # policy below the baseline.
    Environment.objects.filter(pk=demo.staging.pk).update(tier="production")
    return flagged, changes


@pytest.mark.django_db
@pytest.mark.parametrize("framework", sorted(DEPLOYMENTS))
def test_a_bundle_of_awkward_data_reports_the_decisions(demo, period, bundle_of, framework):
    _seed(demo, period)
    plain = bundle_of(build_export(demo, framework, period))
    dataset = DEPLOYMENTS[framework]
    rows = plain.json_rows(dataset)
    # Every deployment went through the door: each has its decision record, and reports it.
    assert {r["decision"] for r in rows} == {"allowed"}
    assert all(r["decision_record"]["allowed"] and r["decision_record"]["action"] == "deploy" for r in rows)
    assert all(r["policy_findings"] == [] for r in rows)
    verdicts = {r["sod_verdict"] for r in rows}
    assert {"pass", "exception", "violation"} <= verdicts
    violated = [r for r in rows if r["sod_verdict"] == "violation"]
    assert all(r["decision_record"]["sod"]["verdict"] != "violation" for r in violated)  # learnt later
    assert all(any(f.endswith("(recorded after the decision)") for f in r["sod_findings"]) for r in violated)
    assert any(f.startswith("approval by ops") for r in violated for f in r["later_findings"])
    assert {"done_late", "overdue", "not_required"} <= {r["pir_status"] for r in rows}
    assert len({r["policy_source"] for r in rows if r["environment"] == "production"}) >= 2
    assert any(len(r["contributors"]) == 2 for r in rows)
    assert any(r["pir_by"] is None for r in rows) and any(r["pir_by"] for r in rows)
    csv_text = plain.members[f"{dataset}.csv"].decode("utf-8")
    assert "'=HYPERLINK" in csv_text and "'+1 call" in csv_text and "'-5" in csv_text and "🚀" in csv_text
    assert '"say ""hi"", then\r\nleave"' in csv_text
    grants = plain.csv_rows("role_grants")
    assert any(g["end_reason"] == "'@left, \"moved\" 🚀" for g in grants)
    assert any("self_granted" in g["findings"] for g in grants)
    assert any(g["environment"] == "all" for g in grants)
    assert any(g["grantee"] == "'-zoë🚀" and g["justification"] == "plain" for g in grants)
    assert plain.manifest["datasets"][dataset]["exceptions"] > 0
    findings = [f for r in rows for f in r["control_findings"]]
    assert any(f.startswith("control_weakened: approval policy production") for f in findings)
    assert any(f.startswith("control_weakened: conflict rule") for f in findings)
    assert any(f.startswith("below_baseline") for f in findings)
    assert any(len(r["control_findings"]) == 2 for r in rows)  # a window and the baseline at once
    assert any(not r["control_findings"] for r in rows)
    kinds = plain.manifest["datasets"][dataset]["exception_kinds"]
    assert kinds["control_weakened"] > 0 and kinds["below_baseline"] > 0
    assert kinds["no_decision_recorded"] == 0
