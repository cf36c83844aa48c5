"""The build itself: manifest and report contents, status and progress, failure and retry, running
twice, and a constant number of queries per batch."""
import hashlib
import os
import zipfile
from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit import signing
from compliance.evidence import builder, controls, services as evidence_services
from audit.models import AuditEvent, AuditSeal, ChainHead, EvidenceExport
from governance import services as governance
from governance.models import Role
from tests.evidence.conftest import build_export, deploy_in
from tests.factories import UserFactory, member

Status = EvidenceExport.Status


def test_manifest_names_period_requester_chain_head_seal_and_key(demo, period, bundle_of):
    seal = AuditSeal.objects.create(
        number=1, created_at=period.middle, sequence=1, head_hash="a" * 64, key_fingerprint=signing.fingerprint(),
        signature=signing.sign(b"seal"),
    )
    head = ChainHead.objects.get(pk=1)
    export = build_export(demo, "sox", period)
    bundle = bundle_of(export)
    manifest = bundle.manifest

    assert manifest["framework"] == "sox"
    assert manifest["period"]["start"] == period.start.isoformat()
    assert manifest["period"]["end"] == period.end.isoformat()
    assert manifest["period"]["boundaries"] == "start inclusive 00:00 UTC, end inclusive (< end+1 day 00:00 UTC)"
    assert manifest["requested_by"] == "auditor"
    # The head when the build started: the export_requested event is already in it.
    assert manifest["audit_chain_head"]["sequence"] >= head.sequence
    assert AuditEvent.objects.get(sequence=manifest["audit_chain_head"]["sequence"]).hash == manifest["audit_chain_head"]["hash"]
    assert manifest["latest_seal"]["number"] == seal.number
    assert manifest["latest_seal"]["signature"] == seal.signature
    assert manifest["signing_key"]["fingerprint"] == signing.fingerprint()
    assert manifest["signing_key"]["public_key_pem"] == signing.public_key_pem()
    assert set(manifest["files"]) == set(bundle.members) - {"manifest.json", "manifest.sig"}
    for name in ("production_deployments", "role_grants", "access_reviews", "leavers"):
        assert manifest["row_counts"][name] == len(bundle.csv_rows(name)) == len(bundle.json_rows(name))
        assert manifest["files"][f"{name}.csv"]["rows"] == manifest["row_counts"][name]
        assert manifest["datasets"][name]["query"]["sql"].lstrip().upper().startswith("SELECT")
    assert {c["id"] for c in manifest["controls"]} == {"SOX ITGC-CM", "SOX ITGC-AC"}
    assert export.row_counts == manifest["row_counts"]
    assert export.file == f"sox-{period.start}-{period.end}-{export.pk}.zip"
    assert export.size == os.path.getsize(bundle.path)
    assert export.sha256 == hashlib.sha256(bundle.path.read_bytes()).hexdigest()
    with zipfile.ZipFile(bundle.path) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}


def test_a_bundle_without_seals_says_so(demo, period, bundle_of):
    bundle = bundle_of(build_export(demo, "hipaa", period))
    assert bundle.manifest["latest_seal"] is None
    assert {c["id"] for c in bundle.manifest["controls"]} == {
        "HIPAA 164.312(b)", "HIPAA 164.308(a)(1)(ii)(D)", "HIPAA 164.308(a)(4)"}


def test_report_is_self_contained_html_with_the_control_table(demo, period, bundle_of):
    deploy_in(demo, demo.production, period.middle)
    bundle = bundle_of(build_export(demo, "iso27001", period))
    report = bundle.members["report.html"].decode()

    assert report.startswith("<!DOCTYPE html>")
    for forbidden in ("<script", "<link", "src=", "@import", "url("):
        assert forbidden not in report.lower()
    for control in ("A.5.3", "A.5.18", "A.8.15", "A.8.32"):
        assert control in report
    assert "auditor" in report and period.start.isoformat() in report
    assert f"event #{bundle.manifest['audit_chain_head']['sequence']}" in report
    verification = {r["check"]: r for r in bundle.csv_rows("audit_verification")}
    assert verification["audit_chain"]["result"] == "pass"


def test_the_task_builds_through_eager_celery(demo, period, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        export = evidence_services.export_request(
            actor=demo.auditor, framework="hipaa", period_start=period.start, period_end=period.end
        )
    export.refresh_from_db()
    assert export.status == Status.DONE and export.progress == 100 and export.attempts == 1
    assert export.started_at and export.finished_at
    built = AuditEvent.objects.filter(action="evidence.export_built", target_id=str(export.pk)).get()
    assert built.data["sha256"] == export.sha256


def test_failure_marks_the_export_failed_and_a_retry_builds_it(demo, period, monkeypatch, settings):
    def broken(ctx, batch):
        raise RuntimeError("database went away: secret detail")

    original = controls.datasets_of
    monkeypatch.setattr(
        builder.ctl, "datasets_of",
        lambda fw: [replace(d, rows=broken) if d.name == "role_grants" else d for d in original(fw)],
    )
    export = evidence_services.export_request(
        actor=demo.auditor, framework="sox", period_start=period.start, period_end=period.end
    )
    user = UserFactory()
    member(user, demo.payments)
    governance.role_grant(actor=demo.mgr, user=user, role=Role.objects.get(slug="developer"), team=demo.payments,
                          environment=demo.development, justification="joins", at=period.middle)

    assert builder.build(export.pk) == Status.FAILED
    export.refresh_from_db()
    assert export.status == Status.FAILED
    assert export.attempts == 1
    assert "RuntimeError" in export.error and "secret detail" not in export.error and "Traceback" not in export.error
    assert export.file == "" and not export.sha256
    assert list(settings.EVIDENCE_ROOT.iterdir()) == []  # the half-written temporary file is gone
    assert AuditEvent.objects.filter(action="evidence.export_failed", target_id=str(export.pk)).exists()
    assert builder.build(export.pk) == Status.FAILED  # a failed export waits for a retry, not a redelivery

    monkeypatch.undo()
    evidence_services.export_retry(actor=demo.auditor, export=export)
    assert builder.build(export.pk) == Status.DONE
    export.refresh_from_db()
    assert export.status == Status.DONE and export.error == "" and export.attempts == 2
    assert export.row_counts["role_grants"] == 1


def test_running_twice_is_safe(demo, period, settings):
    export = build_export(demo, "sox", period)
    path = evidence_services.bundle_path(export)
    before = (path.stat().st_mtime_ns, export.sha256)
    assert builder.build(export.pk) == Status.DONE  # done: nothing to do
    export.refresh_from_db()
    assert (path.stat().st_mtime_ns, export.sha256) == before and export.attempts == 1

    # A worker died mid-build: the export is still "running"; a redelivery builds it again.
    EvidenceExport.objects.filter(pk=export.pk).update(status=Status.RUNNING, progress=40)
    assert builder.build(export.pk) == Status.DONE
    export.refresh_from_db()
    assert export.attempts == 2 and export.progress == 100
    assert [p.name for p in settings.EVIDENCE_ROOT.iterdir()] == [export.file]


def test_progress_moves_during_the_build(demo, period, monkeypatch, settings):
    settings.EVIDENCE_BATCH_SIZE = 1
    for hour in range(3):
        deploy_in(demo, demo.production, period.middle.replace(hour=hour))
    seen = []
    original = builder.Progress._write

    def spy(self, percent):
        # What it writes, on its own connection (PostgreSQL) outside the bundle's snapshot;
        # tests/evidence/test_snapshot.py reads it from another connection while a bundle is built.
        original(self, percent)
        seen.append(percent)

    monkeypatch.setattr(builder.Progress, "_write", spy)
    export = build_export(demo, "sox", period)
    assert seen == sorted(seen) and 0 < seen[0] < 95 and seen[-1] <= 95
    assert len(set(seen)) >= 3
    assert export.progress == 100


def _queries_for(demo, period, framework) -> int:
    export = evidence_services.export_request(
        actor=demo.auditor, framework=framework, period_start=period.start, period_end=period.end
    )
    with CaptureQueriesContext(connection) as captured:
        assert builder.build(export.pk) == Status.DONE
    return len(captured)


@pytest.mark.parametrize("framework", ["sox", "iso27001"])
def test_no_query_per_row(demo, period, settings, framework):
    """All rows in one batch: two, four or six deployments (with their approvals, contributors,
    policies and grants) cost exactly the same queries."""
    settings.EVIDENCE_BATCH_SIZE = 100
    counts = []
    for _ in range(3):
        for _ in range(2):
            deploy_in(demo, demo.production, period.middle)
        counts.append(_queries_for(demo, period, framework))
    assert counts[0] == counts[1] == counts[2], counts


@pytest.mark.parametrize("framework", ["sox", "iso27001"])
def test_queries_per_batch_are_constant(demo, period, settings, framework):
    """Batches of two rows: each further batch costs the same few queries."""
    settings.EVIDENCE_BATCH_SIZE = 2
    counts = []
    for _ in range(3):
        for _ in range(2):
            deploy_in(demo, demo.production, period.middle)
        counts.append(_queries_for(demo, period, framework))
    first_step, second_step = counts[1] - counts[0], counts[2] - counts[1]
    assert first_step == second_step, counts
    batches_per_step = 1 if framework == "sox" else 2  # ISO's changes also hold the staging deployments
    assert 0 < first_step <= 5 * batches_per_step, counts
