"""Fixtures for the evidence bundle tests: a private bundle directory and signing key per test,
a past period with its four boundary moments, and helpers that build and read bundles."""
import csv
import io
import json
import zipfile
from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from types import SimpleNamespace

import pytest
from django.utils import timezone

from compliance.evidence import builder, services as evidence_services
from audit.models import EvidenceExport
from governance.controls.services import control_change, control_change_approve
from releases import services as releases
from releases.models import ApprovalPolicy, ChangeRequest
from tests.factories import UserFactory, bootstrap_grant
from tests.releases.stories import new_artifact

UTC = dt_timezone.utc


@pytest.fixture(autouse=True)
def evidence_settings(settings, tmp_path):
    settings.EVIDENCE_ROOT = tmp_path / "evidence"
    settings.SIGNING_KEY_FILE = tmp_path / "keys" / "signing_key.pem"
    settings.SIGNING_KEY_AUTOGENERATE = True
    return settings


@pytest.fixture
def evidence_root(evidence_settings):
    return evidence_settings.EVIDENCE_ROOT


class Period:
    """period_start .. period_end (both days included), ten to four days ago."""

    def __init__(self):
        today = timezone.now().date()
        self.start: date = today - timedelta(days=10)
        self.end: date = today - timedelta(days=4)
        self.start_at = datetime.combine(self.start, time(0), tzinfo=UTC)
        self.end_exclusive = datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=UTC)
        self.before_start = self.start_at - timedelta(microseconds=1)
        self.end_last = self.end_exclusive - timedelta(microseconds=1)  # end day 23:59:59.999999
        self.middle = self.start_at + timedelta(days=2, hours=10)

    @property
    def boundaries(self):
        """(moment, included?) — just before start, at start, the last microsecond, the next day."""
        return [(self.before_start, False), (self.start_at, True), (self.end_last, True), (self.end_exclusive, False)]


@pytest.fixture
def period():
    return Period()


def build_export(demo, framework: str, period: Period) -> EvidenceExport:
    """Request through the service (as the auditor, who holds export_evidence), build in-process."""
    export = evidence_services.export_request(
        actor=demo.auditor, framework=framework, period_start=period.start, period_end=period.end
    )
    assert builder.build(export.pk) == EvidenceExport.Status.DONE
    export.refresh_from_db()
    return export


class Bundle:
    def __init__(self, export: EvidenceExport):
        self.export = export
        self.path = evidence_services.bundle_path(export)
        with zipfile.ZipFile(self.path) as zf:
            self.members = {name: zf.read(name) for name in zf.namelist()}
        self.manifest = json.loads(self.members["manifest.json"])

    def csv_rows(self, dataset: str) -> list[dict]:
        raw = self.members[f"{dataset}.csv"]
        assert raw.startswith(b"\xef\xbb\xbf"), "CSV starts with a UTF-8 BOM"
        return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))

    def json_rows(self, dataset: str) -> list[dict]:
        return json.loads(self.members[f"{dataset}.json"])


@pytest.fixture
def bundle_of():
    return Bundle


def deploy_in(demo, environment, at, *, title="Retry card authorisation on timeout", artifact=None,
              approvers=None, deployer=None, **fields) -> tuple[ChangeRequest, object]:
    """One change written by dev, approved and deployed at ``at``, through the services.
    Production needs the artifact in staging first and two portal sign-offs (the demo policy)."""
    artifact = artifact or new_artifact()
    if fields.get("change_type") == "emergency":
        fields.setdefault("emergency_reason", "Card payments fail for every customer.")
    if environment.slug == "production":
        deploy_in(demo, demo.staging, at, artifact=artifact, title=title)
    cr = releases.change_request_create(
        actor=demo.dev, team=demo.payments, environment=environment, title=title, artifact=artifact, at=at, **fields
    )
    cr = releases.change_request_submit(actor=demo.dev, change_request=cr, at=at)
    if environment.slug == "production":
        reviewers, via = approvers or (demo.rev, demo.rev2), "portal"
    else:
        reviewers, via = approvers or (demo.rev,), "api"
    for reviewer in reviewers:
        if cr.state == ChangeRequest.State.PENDING:
            cr = releases.change_request_approve(actor=reviewer, change_request=cr, via=via, at=at)
    assert cr.state == ChangeRequest.State.APPROVED, cr.state
    deployment = releases.deployment_start(actor=deployer or demo.ops, change_request=cr, at=at)
    deployment = releases.deployment_finish(actor=deployer or demo.ops, deployment=deployment, outcome="succeeded", at=at)
    return cr, deployment


@pytest.fixture
def sec2(demo):
    """A second security officer, for production (the second person of a weakening change there)."""
    user = UserFactory(username="sec2", is_staff=True)
    bootstrap_grant(user, "security", demo.payments, demo.production)
    return user


def weakened_then_restored(demo, second, period) -> SimpleNamespace:
    """The production policy asks two approvals. In the middle of the period sec proposes one,
    ``second`` approves it an hour later, and a day after the proposal sec restores two (a
    strengthening change: applied at once). Production deployments: the day before, at the moment
    the weakening took effect, two hours into it, at the moment of the restore, and a day after."""
    policy = ApprovalPolicy.objects.get(environment=demo.production)
    proposed_at = period.middle
    weakened_at, restored_at = proposed_at + timedelta(hours=1), proposed_at + timedelta(days=1)
    _, before = deploy_in(demo, demo.production, proposed_at - timedelta(days=1), title="before the weakening")
    proposal = control_change(actor=demo.sec, kind="releases.approvalpolicy", target=policy,
                              values={"min_approvals": 1}, comment="One reviewer during the migration week",
                              at=proposed_at)
    weakening = control_change_approve(actor=second, change=proposal, comment="Agreed, one week", at=weakened_at)
    _, at_weakening = deploy_in(demo, demo.production, weakened_at, title="as the weakening took effect")
    _, between = deploy_in(demo, demo.production, weakened_at + timedelta(hours=2), title="while weakened")
    restore = control_change(actor=demo.sec, kind="releases.approvalpolicy", target=policy,
                             values={"min_approvals": 2}, at=restored_at)
    _, at_restore = deploy_in(demo, demo.production, restored_at, title="as the restore took effect")
    _, after = deploy_in(demo, demo.production, restored_at + timedelta(days=1), title="after the restore")
    return SimpleNamespace(weakening=weakening, restore=restore, before=before, at_weakening=at_weakening,
                           between=between, at_restore=at_restore, after=after)
