"""Issue 14 class 3 in the evidence: a bundle lists everyone who was ever a contributor of a
deployed change, in any revision, and judges separation of duties against all of them, not only
against the revision that went out. (An approval written after the
decision is reported as learnt later, judged by the engine's own ``sod_conflicts``.)"""
from releases import services as releases
from releases.models import Approval
from tests.evidence.conftest import build_export, deploy_in
from tests.releases.stories import new_artifact


def laundered_deployment(demo, at, contributor):
    """Revision 1 lists ``contributor``; revision 2 (the artifact staging saw) no longer does. rev
    and rev2 sign revision 2 off in the portal and ops deploys it."""
    artifact = new_artifact()
    deploy_in(demo, demo.staging, at, artifact=artifact)
    cr = releases.change_request_create(actor=demo.dev, team=demo.payments, environment=demo.production,
                                        title="Retry", artifact=new_artifact(), contributors=[contributor.username],
                                        at=at)
    cr = releases.change_request_submit(actor=demo.dev, change_request=cr, at=at)
    cr = releases.change_request_update(actor=demo.dev, change_request=cr,
                                        changes={"artifact": artifact, "contributors": []}, at=at)
    for reviewer in (demo.rev, demo.rev2):
        cr = releases.change_request_approve(actor=reviewer, change_request=cr, via="portal", revision=2, at=at)
    deployment = releases.deployment_start(actor=demo.ops, change_request=cr, at=at)
    return cr, releases.deployment_finish(actor=demo.ops, deployment=deployment, outcome="succeeded", at=at)


def row_of(bundle, dataset, deployment):
    (row,) = [r for r in bundle.json_rows(dataset) if r["deployment_id"] == deployment.pk]
    return row


def test_a_contributor_dropped_by_a_later_revision_is_still_listed(demo, period, bundle_of):
    cr, deployment = laundered_deployment(demo, period.middle, demo.dev2)
    assert list(cr.contributors.all()) == []

    for framework, dataset in (("sox", "production_deployments"), ("iso27001", "changes")):
        bundle = bundle_of(build_export(demo, framework, period))
        row = row_of(bundle, dataset, deployment)
        assert (row["revision"], row["contributors"], row["sod_verdict"]) == (2, ["dev2"], "pass")
        (csv_row,) = [r for r in bundle.csv_rows(dataset) if int(r["deployment_id"]) == deployment.pk]
        assert csv_row["contributors"] == "dev2"


def test_an_approval_by_a_former_contributor_is_a_violation(demo, period, bundle_of):
    """The services refuse it now; an approval written around them (or before the history was
    kept) is what the verdict exists to catch."""
    cr, deployment = laundered_deployment(demo, period.middle, demo.dev2)
    Approval.objects.create(
        change_request=cr, reviewer=demo.dev2, decision=Approval.Decision.APPROVED, revision=deployment.revision,
        artifact=deployment.artifact, via=Approval.Via.API, created_at=period.middle,
    )

    bundle = bundle_of(build_export(demo, "sox", period))

    row = row_of(bundle, "production_deployments", deployment)
    # The decision counted rev and rev2; the approval appeared after it, so the bundle says so.
    assert row["decision_record"]["sod"] == {"verdict": "pass", "findings": []}
    assert row["sod_verdict"] == "violation"
    assert row["sod_findings"] == ["contributor_approved (recorded after the decision)"]
    assert "approval by dev2 (recorded after the decision)" in row["later_findings"]
