"""The SoD verdict per change (SOX ITGC-CM, ISO A.5.3): a change approved by someone who held
conflicting duties under an SoD exception is flagged, and so is a change whose approver deployed it."""
from datetime import timedelta

from governance import duties, services as governance
from governance.models import Role
from releases.models import Approval, Deployment
from tests.evidence.conftest import build_export, deploy_in


def _rev2_under_exception(demo, at):
    """rev2 (a production reviewer) also gets deploy on production, allowed only by an SoD
    exception: requested by the manager, approved by security, then a four-eyes grant."""
    exception = governance.sod_exception_request(
        actor=demo.mgr, user=demo.rev2, duty_a=duties.APPROVE, duty_b=duties.DEPLOY, environment=demo.production,
        justification="incident cover for the release weekend", expires_at=at + timedelta(days=20), at=at,
    )
    exception = governance.sod_exception_approve(actor=demo.sec, exception=exception, at=at)
    grant = governance.role_grant(
        actor=demo.mgr, user=demo.rev2, role=Role.objects.get(slug="operations"), team=demo.payments,
        environment=demo.production, justification="release weekend", expires_at=at + timedelta(days=10), at=at,
    )
    grant = governance.role_assignment_approve(actor=demo.sec, assignment=grant, at=at)
    assert grant.sod_exception_id == exception.pk
    return exception


def test_a_change_approved_under_an_sod_exception_is_flagged(demo, period, bundle_of):
    exception = _rev2_under_exception(demo, period.middle - timedelta(hours=1))
    flagged_cr, flagged = deploy_in(demo, demo.production, period.middle, approvers=(demo.rev, demo.rev2))
    # Before the exception existed the same people's change passes.
    clean_cr, clean = deploy_in(demo, demo.production, period.middle - timedelta(days=1))

    for framework, dataset in (("sox", "production_deployments"), ("iso27001", "changes")):
        bundle = bundle_of(build_export(demo, framework, period))
        rows = {int(r["deployment_id"]): r for r in bundle.csv_rows(dataset)}
        assert rows[flagged.pk]["sod_verdict"] == "exception"
        assert f"approver rev2 under SoD exception #{exception.pk}" in rows[flagged.pk]["sod_findings"]
        assert rows[clean.pk]["sod_verdict"] == "pass"
        assert rows[clean.pk]["sod_findings"] == ""
        json_rows = {r["deployment_id"]: r for r in bundle.json_rows(dataset)}
        assert json_rows[flagged.pk]["sod_findings"] == [f"approver rev2 under SoD exception #{exception.pk}"]
        assert {a["username"] for a in json_rows[flagged.pk]["approvers"]} == {"rev", "rev2"}

        control = next(c for c in bundle.manifest["controls"] if c["id"] in ("SOX ITGC-CM", "ISO 27001 A.5.3"))
        assert control["exception_kinds"][f"{dataset}: sod_exception"] == 1
        assert control["exceptions"] >= 1
        assert bundle.manifest["datasets"][dataset]["exception_kinds"]["sod_exception"] == 1
        assert b"sod_exception: 1" in bundle.members["report.html"]

    iso = bundle_of(build_export(demo, "iso27001", period))
    exceptions = {int(r["exception_id"]): r for r in iso.csv_rows("sod_exceptions")}
    assert exceptions[exception.pk]["user"] == "rev2"
    assert exceptions[exception.pk]["approved_by"] == "sec"


def test_an_approver_who_deployed_is_a_violation(demo, period, bundle_of):
    """The services refuse this (C5); a row written around them — a database edit — is what the
    verdict exists to catch, so it is simulated here with the ORM."""
    cr, deployment = deploy_in(demo, demo.production, period.middle)
    Approval.objects.create(
        change_request=cr, reviewer=demo.ops, decision=Approval.Decision.APPROVED, revision=deployment.revision,
        artifact=deployment.artifact, via=Approval.Via.API, created_at=period.middle,
    )
    bundle = bundle_of(build_export(demo, "sox", period))

    (row,) = [r for r in bundle.json_rows("production_deployments") if r["deployment_id"] == deployment.pk]
    assert row["sod_verdict"] == "violation"
    assert "deployer_approved (recorded after the decision)" in row["sod_findings"]
    assert bundle.manifest["datasets"]["production_deployments"]["exception_kinds"]["sod_violation"] == 1


def test_policy_at_deploy_time_comes_from_the_decision_record(demo, period, bundle_of):
    _, deployment = deploy_in(demo, demo.production, period.middle)
    bundle = bundle_of(build_export(demo, "sox", period))

    (row,) = [r for r in bundle.json_rows("production_deployments") if r["deployment_id"] == deployment.pk]
    policy = row["policy_at_deploy"]
    assert policy["min_approvals"] == 2
    assert policy["team_reviewer_required"] is True
    assert policy["require_interactive_signoff"] is True
    assert row["policy_source"].startswith("decision record of ")
    version = row["decision_record"]["policy"]["version"]
    assert f"version {version['history_id']}" in row["policy_source"]
    assert row["policy_findings"] == []
    met = {r["name"]: (r["required"], r["actual"], r["met"]) for r in row["decision_record"]["requirements"]}
    assert met["approvals"] == (2, 2, True) and met["team_reviewer"][2] and met["independent_approval"][2]
    assert [a["via"] for a in row["approvers"]] == ["portal", "portal"]


def test_a_deployment_without_a_decision_record_says_so(demo, period, bundle_of):
    """Deployments started before decision records were kept (or written around the services)
    are reported as such: the bundle makes up no decision after the fact (docs/rules.md L4)."""
    cr, recorded = deploy_in(demo, demo.production, period.middle)
    Deployment.objects.filter(pk=recorded.pk).update(decision=None)
    bundle = bundle_of(build_export(demo, "sox", period))

    (row,) = [r for r in bundle.json_rows("production_deployments") if r["deployment_id"] == recorded.pk]
    assert (row["decision"], row["sod_verdict"], row["decision_record"]) == ("not_recorded", "not_recorded", None)
    assert row["policy_source"].startswith("no decision recorded; from the policy's history: ")
    assert row["policy_at_deploy"]["min_approvals"] == 2  # context only: no verdict is derived from it
    assert bundle.manifest["datasets"]["production_deployments"]["exception_kinds"]["no_decision_recorded"] == 1
