"""Each framework's bundle holds exactly the rows of its period: a row at period_start 00:00 and
one at the last microsecond of period_end are in, one a microsecond before the start and one at
period_end + 1 day 00:00 are out (docs: start inclusive, end inclusive, < end+1 day 00:00 UTC)."""
import audit
from governance import services as governance
from governance.models import Role
from tests.evidence.conftest import build_export, deploy_in
from tests.factories import UserFactory, member


def _seed_deployments(demo, period, environment) -> dict:
    """One deployment at each boundary moment; returns {deployment id: included?}."""
    seeded = {}
    for moment, included in period.boundaries:
        _, deployment = deploy_in(demo, environment, moment, title=f"change at {moment.isoformat()}")
        seeded[deployment.pk] = included
    return seeded


def _ids(rows, column) -> set[int]:
    return {int(r[column]) for r in rows}


def test_sox_production_deployments_hold_exactly_the_period(demo, period, bundle_of):
    seeded = _seed_deployments(demo, period, demo.production)
    bundle = bundle_of(build_export(demo, "sox", period))

    expected = {pk for pk, included in seeded.items() if included}
    assert _ids(bundle.csv_rows("production_deployments"), "deployment_id") == expected
    assert {r["deployment_id"] for r in bundle.json_rows("production_deployments")} == expected
    assert bundle.manifest["row_counts"]["production_deployments"] == 2
    # Staging deployments of the same artifacts (C8) are not production: not in the SOX population.
    assert all(r["environment_tier"] == "production" for r in bundle.csv_rows("production_deployments"))


def test_sox_role_grants_hold_exactly_the_period(demo, period, bundle_of):
    seeded = {}
    for moment, included in period.boundaries:
        user = UserFactory()
        member(user, demo.payments)
        grant = governance.role_grant(
            actor=demo.mgr, user=user, role=Role.objects.get(slug="developer"), team=demo.payments,
            environment=demo.development, justification="joins the team", at=moment,
        )
        seeded[grant.pk] = included
    bundle = bundle_of(build_export(demo, "sox", period))

    rows = bundle.csv_rows("role_grants")
    assert _ids(rows, "grant_id") == {pk for pk, included in seeded.items() if included}
    assert {r["requested_by"] for r in rows} == {"mgr"}


def test_hipaa_audit_events_hold_exactly_the_period(demo, period, bundle_of):
    seeded = {}
    for moment, included in period.boundaries:
        event = audit.record("test.boundary", actor=demo.dev, data={"at": moment}, at=moment)
        seeded[event.sequence] = included
    bundle = bundle_of(build_export(demo, "hipaa", period))

    rows = [r for r in bundle.csv_rows("audit_events") if r["action"] == "test.boundary"]
    assert _ids(rows, "sequence") == {seq for seq, included in seeded.items() if included}
    json_rows = [r for r in bundle.json_rows("audit_events") if r["action"] == "test.boundary"]
    assert {r["sequence"] for r in json_rows} == {seq for seq, included in seeded.items() if included}
    # Every event of the period is in the extract, and no other (the demo's events are from today).
    assert bundle.manifest["row_counts"]["audit_events"] == len(bundle.csv_rows("audit_events"))
    assert all(period.start_at.isoformat()[:10] <= r["created_at"][:10] <= period.end.isoformat()
               for r in bundle.csv_rows("audit_events"))


def test_iso_changes_hold_exactly_the_period_in_every_environment(demo, period, bundle_of):
    seeded = _seed_deployments(demo, period, demo.staging)
    bundle = bundle_of(build_export(demo, "iso27001", period))

    assert _ids(bundle.csv_rows("changes"), "deployment_id") == {pk for pk, included in seeded.items() if included}
    assert {r["environment"] for r in bundle.csv_rows("changes")} == {"staging"}
