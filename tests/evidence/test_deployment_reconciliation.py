"""Issue 16, item 5: the SOX bundle holds the reconciliation of the production deployments the
platforms and deploy tools reported with approved change requests: the completeness of the change
population (SOX ITGC-CM). A report the period does not hold is left out; one nothing covers is an
exception that counts against the control."""
from datetime import timedelta

from releases import services as releases
from tests.evidence.conftest import build_export, deploy_in
from tests.releases.stories import new_artifact


def test_the_sox_bundle_reconciles_every_reported_production_deployment_of_the_period(demo, period, bundle_of):
    cr, deployment = deploy_in(demo, demo.production, period.middle)
    at = period.middle + timedelta(minutes=5)
    releases.deployment_report(actor=demo.ops, environment=demo.production, artifact=cr.artifact, source="argo", at=at)
    stray = new_artifact()
    releases.deployment_report(actor=demo.ops, environment=demo.production, artifact=stray, source="argo", at=at)
    releases.deployment_report(actor=demo.ops, environment=demo.staging, artifact=stray, at=at)  # not production
    releases.deployment_report(actor=demo.ops, environment=demo.production, artifact=stray,
                               at=period.end_exclusive)  # after the period
    bundle = bundle_of(build_export(demo, "sox", period))
    rows = bundle.json_rows("deployment_reconciliation")
    assert [(r["artifact"], r["change_id"], r["countersigned_by"], r["findings"]) for r in rows] == [
        (cr.artifact, f"CR-{cr.pk}", f"deployment #{deployment.pk}", []),
        (stray, "", "", ["no_change_request"]),
    ]
    assert len(bundle.csv_rows("deployment_reconciliation")) == 2
    summary = bundle.manifest["datasets"]["deployment_reconciliation"]
    assert summary["controls"] == ["SOX ITGC-CM"]
    assert (summary["rows"], summary["exceptions"], summary["exception_kinds"]["no_change_request"]) == (2, 1, 1)
    assert summary["query"]["sql"].lstrip().upper().startswith("SELECT")


def test_hipaa_and_iso_bundles_do_not_hold_it(demo, period, bundle_of):
    for framework in ("hipaa", "iso27001"):
        assert "deployment_reconciliation.csv" not in bundle_of(build_export(demo, framework, period)).members
