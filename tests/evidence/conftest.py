"""Fixtures for the evidence bundle tests: a private bundle directory and signing key per test,
a past period with its four boundary moments, and helpers that build and read bundles."""
import csv
import io
import json
import zipfile
from datetime import date, datetime, time, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from audit.evidence import builder, services as evidence_services
from audit.models import EvidenceExport
from releases import services as releases
from releases.models import ChangeRequest
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
