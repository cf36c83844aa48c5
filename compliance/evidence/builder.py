"""Builds one evidence bundle (RULES.md L3): the body of the ``build_evidence_export`` task.

The bundle ``<framework>-<start>-<end>-<id>.zip`` (under ``EVIDENCE_ROOT``) holds, for each
dataset of the framework (``compliance.evidence.controls``), ``<dataset>.csv`` and ``<dataset>.json``
(formats: ``compliance.evidence.writer``), ``report.html`` (a self-contained summary with the
control-by-control table), ``manifest.json`` and ``manifest.sig`` (the base64 Ed25519 signature
of the exact bytes of manifest.json; checked offline by ``audit/bundle_verify.py``).

Streaming: rows are read ``EVIDENCE_BATCH_SIZE`` at a time and written straight into the ZIP, so
memory holds one batch whatever the period. Progress moves about forty times per export.

One snapshot (RULES.md L3): every dataset of a bundle, its counts, the chain head and the report
are read in one transaction (``snapshot``: REPEATABLE READ, read only, on PostgreSQL; one read
transaction on SQLite), so a row written while the bundle is built is in every dataset or in none;
the manifest's ``snapshot`` names the chain head it saw. Progress is written on a connection of
its own (PostgreSQL), outside that snapshot; on SQLite a write would wait for the reading
transaction, so progress there moves only when the bundle is done.

Safe to run twice: a done export returns at once; a queued or running one (a worker restarted
mid-build) is built again into a fresh temporary file that is renamed over the final name only
when complete, so no reader ever sees half a bundle. A failure marks the export ``failed`` with a
short error (the traceback goes to the log), and ``export_retry`` queues it again.
"""
import hashlib
import json
import logging
import os
import uuid
import zipfile
from contextlib import contextmanager
from datetime import datetime
from itertools import islice

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

import audit
from audit import signing
from audit.chain import GENESIS
from compliance.evidence import controls as ctl, transparency
from compliance.evidence.datasets import Context, control_changes_for_report, load_control_history, load_lookups
from compliance.evidence.services import period_bounds
from compliance.evidence.writer import DatasetWriter, NEUTRALISED_PREFIXES, ZipPipe, iso, json_value, write_member
from audit.models import AuditSeal, ChainHead, EvidenceExport

log = logging.getLogger(__name__)

FORMAT = "countersign-evidence-bundle/1"
BOUNDARIES = "start inclusive 00:00 UTC, end inclusive (< end+1 day 00:00 UTC)"
# Fast deflate: bundles are mostly text and shrink well even at level 1, at a third of the CPU of
# the default level, which matters for a million rows.
COMPRESS_LEVEL = 1
PROGRESS_STEPS = 40
REPORT_CONTROL_CHANGES = 200  # the report lists at most these; control_changes.csv holds them all
Status = EvidenceExport.Status


def bundle_name(export: EvidenceExport) -> str:
    return f"{export.framework}-{export.period_start.isoformat()}-{export.period_end.isoformat()}-{export.pk}.zip"


class Progress:
    """Moves ``export.progress`` (0..95 while rows are written) about PROGRESS_STEPS times, so the
    admin, the portal and the API see it while the task runs. On PostgreSQL it writes on a
    connection of its own (autocommit, ``synchronous_commit = off``: progress is advisory, a crash
    may lose the last few updates, never corrupt anything), outside the bundle's snapshot; on
    SQLite it does not write until the bundle is done (see the module's docstring)."""

    def __init__(self, export_id: int, total: int):
        self.export_id, self.total, self.done = export_id, max(total, 1), 0
        self.step = max(self.total // PROGRESS_STEPS, 1)
        self.next_at = self.step
        self._connection, self._lazy = None, False
        if connection.vendor == "postgresql":
            self._connection = connections.create_connection(DEFAULT_DB_ALIAS)  # a new connection, not the shared one

    def add(self, rows: int) -> None:
        self.done += rows
        if self.done >= self.next_at:
            self.next_at = (self.done // self.step + 1) * self.step
            self._write(min(95, self.done * 95 // self.total))

    def _write(self, percent: int) -> None:
        if self._connection is None:
            return
        table = EvidenceExport._meta.db_table
        try:
            with self._connection.cursor() as cursor:
                if not self._lazy:
                    cursor.execute("SELECT set_config('synchronous_commit', 'off', false)")
                    self._lazy = True
                cursor.execute(f"UPDATE {table} SET progress = %s WHERE id = %s AND status = %s",  # nosec B608 (the model's table)
                               [percent, self.export_id, Status.RUNNING])
        except DatabaseError:  # advisory: a lost progress update never fails the export
            log.warning("evidence export %s: progress not written", self.export_id, exc_info=True)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


SNAPSHOT_CALLER = "the caller's transaction (already open: its own isolation)"


@contextmanager
def snapshot():
    """One consistent read for the whole bundle; yields what the manifest says of it."""
    if connection.in_atomic_block:
        # Inside someone's transaction (a test's): its reads are this bundle's, whatever they see.
        yield SNAPSHOT_CALLER
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield "REPEATABLE READ, READ ONLY (PostgreSQL): one snapshot for every dataset"
        else:
            yield "one read transaction (SQLite): every dataset from the same database state"


def _query_of(queryset) -> dict:
    try:
        sql, params = queryset.query.sql_with_params()
    except Exception:  # an empty IN () and the like: the population is empty by construction
        return {"sql": str(queryset.query), "params": []}
    return {"sql": sql, "params": [json_value(p) if not isinstance(p, (str, int, float, bool, type(None))) else p
                                   for p in params]}


def _batches(queryset, size: int):
    rows = queryset.iterator(chunk_size=size)
    while batch := list(islice(rows, size)):
        yield batch


@contextmanager
def fast_timestamps():
    """On PostgreSQL, read ``timestamptz`` values with ``datetime.fromisoformat`` (C) while the
    bundle is written. Django installs a psycopg loader written in Python (it re-applies the
    connection's time zone), which costs more than everything else a row needs; this one returns
    the very same aware datetimes, falling back to Django's for anything ``fromisoformat`` does
    not read (infinity, BC dates, a non-ISO DateStyle). The connection's loader is put back after.
    Elsewhere (SQLite) nothing changes."""
    if connection.vendor != "postgresql":
        yield
        return
    from psycopg.pq import Format
    from psycopg.postgres import types

    connection.ensure_connection()
    raw = connection.connection
    oid = types["timestamptz"].oid
    django_loader = raw.adapters.get_loader(oid, Format.TEXT)
    fromisoformat = datetime.fromisoformat

    class FastTimestamptzLoader(django_loader):
        def load(self, data):
            try:
                value = fromisoformat(bytes(data).decode("ascii"))
            except (ValueError, UnicodeDecodeError):
                return super().load(data)
            if value.tzinfo is None:
                return super().load(data)
            return value.astimezone(self.timezone) if self.timezone is not None else value.replace(tzinfo=None)

    raw.adapters.register_loader(oid, FastTimestamptzLoader)
    try:
        yield
    finally:
        raw.adapters.register_loader(oid, django_loader)


def _seal_dict(seal: AuditSeal | None) -> dict | None:
    if seal is None:
        return None
    return {
        "number": seal.number,
        "created_at": iso(seal.created_at),
        "sequence": seal.sequence,
        "head_hash": seal.head_hash,
        "prev_signature": seal.prev_signature,
        "key_fingerprint": seal.key_fingerprint,
        "signature": seal.signature,
    }


def _write_dataset(ctx, export, dataset, writer, computed, progress, batch_size) -> dict:
    """Stream one dataset into ``writer``; returns its summary (rows, exceptions, query, columns)."""
    kinds = dict.fromkeys(dataset.exceptions, 0)
    exception_rows = 0
    if dataset.computed is not None:
        source = [computed[dataset.name]]
        query = {"sql": None, "computed": dataset.population}
    else:
        queryset = dataset.queryset(ctx)
        source = _batches(queryset, batch_size)
        query = _query_of(queryset)
    predicates = list(dataset.exceptions.items())
    for batch in source:
        rows = dataset.rows(ctx, batch)
        for row in rows if predicates else ():
            hit = False
            for kind, predicate in predicates:
                if predicate(row):
                    kinds[kind] += 1
                    hit = True
            exception_rows += hit
        writer.write_batch(rows)
        progress.add(len(batch))
    writer.close()
    return {
        "title": dataset.title,
        "controls": ctl.controls_of(export.framework, dataset.name),
        "population": dataset.population,
        "files": [f"{dataset.name}.csv", f"{dataset.name}.json"],
        "rows": writer.rows,
        "exceptions": exception_rows,
        "exception_kinds": kinds,
        "query": query,
        "columns": [{"name": n, "meaning": m} for n, m in dataset.columns],
    }


def _write_bundle(export: EvidenceExport, path) -> tuple[dict, dict]:
    """Write the whole ZIP to ``path`` from one snapshot; returns (files, row_counts)."""
    with fast_timestamps(), snapshot() as isolation:
        return _write_bundle_rows(export, path, isolation)


def _write_bundle_rows(export: EvidenceExport, path, isolation: str) -> tuple[dict, dict]:
    start, end = period_bounds(export)
    head = ChainHead.objects.filter(pk=1).first()
    head_sequence, head_hash = (head.sequence, head.hash) if head else (0, GENESIS)
    seal = AuditSeal.objects.order_by("-number").first()
    ctx = Context(start=start, end=end, generated_at=timezone.now(), head_sequence=head_sequence)
    load_lookups(ctx)
    load_control_history(ctx, ctl.POLICY_BASELINES.get(export.framework))
    batch_size = settings.EVIDENCE_BATCH_SIZE
    datasets = ctl.datasets_of(export.framework)

    computed = {d.name: d.computed(ctx) for d in datasets if d.computed is not None}
    totals = {d.name: len(computed[d.name]) if d.computed else d.queryset(ctx).count() for d in datasets}
    progress = Progress(export.pk, sum(totals.values()))
    proofs = transparency.section(export, seal, start, end)  # the checkpoint and its proofs, same snapshot
    try:
        return _write_zip(export, path, ctx, datasets, computed, progress, batch_size,
                          {"isolation": isolation, "chain_head": {"sequence": head_sequence, "hash": head_hash}}, seal,
                          proofs)
    finally:
        progress.close()


def _write_zip(export, path, ctx, datasets, computed, progress, batch_size, snapshot_info, seal, proofs=None):
    head = snapshot_info["chain_head"]
    start, end = ctx.start, ctx.end

    files: dict[str, dict] = {}
    summary: dict[str, dict] = {}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as zf:
        pipe = ZipPipe()
        writers = []
        try:
            for dataset in datasets:
                writer = DatasetWriter(zf, dataset.name, dataset.column_names, dataset.json_columns, pipe=pipe)
                writers.append(writer)
                summary[dataset.name] = _write_dataset(ctx, export, dataset, writer, computed, progress, batch_size)
            pipe.close()  # every dataset's members written and hashed
        except BaseException:
            pipe.cancel()
            for opened in writers:
                opened.abort()
            raise
        for writer in writers:
            files.update(writer.files)

        control_rows = []
        for control in ctl.FRAMEWORKS[export.framework]:
            exceptions = {}
            for dataset, kinds in control.evidence:
                counted = summary[dataset.name]["exception_kinds"]
                for kind in kinds or counted:
                    exceptions[f"{dataset.name}: {kind}"] = counted.get(kind, 0)
            control_rows.append({
                "id": control.id,
                "name": control.name,
                "tests": control.tests,
                "datasets": [d.name for d, _ in control.evidence],
                "files": [f for d, _ in control.evidence for f in summary[d.name]["files"]],
                "rows": {d.name: summary[d.name]["rows"] for d, _ in control.evidence},
                "exceptions": sum(exceptions.values()),
                "exception_kinds": exceptions,
            })

        row_counts = {name: s["rows"] for name, s in summary.items()}
        manifest = {
            "format": FORMAT,
            "export_id": export.pk,
            "framework": export.framework,
            "framework_name": export.get_framework_display(),
            "period": {
                "start": export.period_start.isoformat(),
                "end": export.period_end.isoformat(),
                "boundaries": BOUNDARIES,
                "from": iso(start),
                "until_exclusive": iso(end),
            },
            "requested_by": export.requested_by.username,
            "requested_at": iso(export.requested_at),
            "generated_at": iso(ctx.generated_at),
            "audit_chain_head": head,
            "snapshot": snapshot_info,
            "latest_seal": _seal_dict(seal),
            "transparency": proofs,
            "signing_key": {
                "algorithm": "Ed25519",
                "fingerprint": signing.fingerprint(),
                "public_key_pem": signing.public_key_pem(),
                "signature_file": "manifest.sig",
                "signs": "the exact bytes of manifest.json",
            },
            "formats": {
                "csv": "UTF-8 with BOM, comma-separated, header row, CRLF; strings starting with "
                       + " ".join(repr(p) for p in NEUTRALISED_PREFIXES)
                       + " are prefixed with a single quote; numbers are written as numbers.",
                "json": "one JSON array per dataset, one object per line, raw values (no quote prefix).",
                "times": "ISO 8601, UTC (Z).",
            },
            "row_counts": row_counts,
            "controls": control_rows,
            "datasets": summary,
        }
        changes, changes_total = control_changes_for_report(ctx, REPORT_CONTROL_CHANGES)
        report = render_to_string("compliance/evidence/report.html", {
            "manifest": manifest,
            "controls": control_rows,
            "datasets": summary,
            "control_changes": changes,
            "control_changes_total": changes_total,
        }).encode("utf-8")
        files["report.html"] = write_member(zf, "report.html", report)
        manifest["files"] = files
        manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        write_member(zf, "manifest.json", manifest_bytes)
        write_member(zf, "manifest.sig", (signing.sign(manifest_bytes) + "\n").encode("ascii"))
    return files, row_counts


def _sha256_of(path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _claim(export_id: int) -> bool:
    """Move a queued (or interrupted running) export to running; False if there is nothing to do."""
    return bool(
        EvidenceExport.objects.filter(pk=export_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
            status=Status.RUNNING, progress=0, error="", started_at=timezone.now(), finished_at=None,
            attempts=F("attempts") + 1,
        )
    )


def build(export_id: int) -> str:
    """Build the bundle of export ``export_id``; returns its final status."""
    export = EvidenceExport.objects.select_related("requested_by").filter(pk=export_id).first()
    if export is None:
        log.warning("evidence export %s does not exist", export_id)
        return "missing"
    if export.status == Status.DONE or not _claim(export_id):
        return export.status
    root = settings.EVIDENCE_ROOT
    name = bundle_name(export)
    tmp = root / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        root.mkdir(parents=True, exist_ok=True)
        files, row_counts = _write_bundle(export, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, root / name)
        sha256, size = _sha256_of(root / name)
        with transaction.atomic():
            EvidenceExport.objects.filter(pk=export_id).update(
                status=Status.DONE, progress=100, file=name, size=size, sha256=sha256, row_counts=row_counts,
                checkpoint_tree_size=export.checkpoint_tree_size, finished_at=timezone.now(), error="",
            )
            export.refresh_from_db()
            audit.record(
                "evidence.export_built", target=export,
                data={"framework": export.framework, "file": name, "sha256": sha256, "size": size,
                      "row_counts": row_counts, "checkpoint_tree_size": export.checkpoint_tree_size},
            )
        return Status.DONE
    except Exception as exc:
        log.exception("evidence export %s failed", export_id)
        tmp.unlink(missing_ok=True)
        error = f"Building the bundle failed ({type(exc).__name__}); the server log has the details."
        try:
            with transaction.atomic():
                EvidenceExport.objects.filter(pk=export_id).update(
                    status=Status.FAILED, error=error, finished_at=timezone.now()
                )
                audit.record("evidence.export_failed", target=export,
                             data={"framework": export.framework, "error": error})
        except Exception:  # the database itself is down: the log is all we can do
            log.exception("evidence export %s: could not record the failure", export_id)
        return Status.FAILED
