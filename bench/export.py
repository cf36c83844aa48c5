"""SOX evidence export vs its floor: ``COPY (SELECT …) TO STDOUT`` of the same populations.

The export runs ``compliance.evidence.builder.build(export_id)`` in a process of its own (as a Celery
worker would), so its peak RSS is the exporter's alone. The floor streams the same SOX datasets'
querysets (``compliance.evidence.controls``) of the same period through PostgreSQL's COPY, into nothing.
Rates are rows per second; the rows counted for the export are the ones its manifest reports.

Both are measured warm: one export of the same period is built first, unmeasured, so the measured
one does not pay alone for reading a freshly cloned database into the cache (on the ``large``
data a first build took 2.8 s and the next ones 2.1-2.3 s, while the floor, run after it, was
always warm).
"""
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def copy_floor(export) -> dict:
    """COPY TO STDOUT, discarding the bytes, of each SOX dataset's own queryset (its SQL with the
    joins ``select_related`` adds; the prefetched approvals and the per-row work are what the
    exporter does on top): rows and seconds."""
    from django.db import connection

    from compliance.evidence import controls
    from compliance.evidence.datasets import Context, load_lookups
    from compliance.evidence.services import period_bounds

    start, end = period_bounds(export)
    ctx = Context(start=start, end=end, generated_at=start, head_sequence=0)
    load_lookups(ctx)
    rows, size, started = 0, 0, time.perf_counter()
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:  # psycopg ClientCursor: mogrify inlines params
        for dataset in controls.datasets_of("sox"):
            if dataset.queryset is None:
                continue
            sql, params = dataset.queryset(ctx).query.sql_with_params()
            with cursor.copy(f"COPY ({cursor.mogrify(sql, params)}) TO STDOUT") as copy:
                for block in copy:
                    size += len(block)
                    rows += bytes(block).count(b"\n")
    return {"rows": rows, "seconds": time.perf_counter() - started, "bytes": size}


def _period() -> tuple[date, date]:
    """The last 400 days (the longest period an export may cover), ending today."""
    from django.utils import timezone

    from compliance.evidence.services import MAX_PERIOD_DAYS

    end = timezone.now().date()
    return end - timedelta(days=MAX_PERIOD_DAYS - 1), end


def run() -> dict:
    """Build one export in a child process (after an unmeasured one), then run the floor over the same period."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from audit.models import AuditEvent, EvidenceExport
    from releases.models import Deployment

    start, end = _period()
    auditor = get_user_model().objects.filter(username=os.environ.get("BENCH_AUDITOR", "bench-auditor")).first()
    if auditor is None:
        auditor = get_user_model().objects.filter(is_superuser=True).first()

    def build_in_child() -> tuple[EvidenceExport, subprocess.CompletedProcess]:
        export = EvidenceExport.objects.create(
            framework=EvidenceExport.Framework.SOX, period_start=start, period_end=end, requested_by=auditor,
            requested_at=timezone.now(),
        )
        connection.close()
        return export, subprocess.run([sys.executable, str(Path(__file__)), str(export.pk)], cwd=ROOT,
                                      capture_output=True, text=True)

    population = {"audit_events": AuditEvent.objects.count(), "deployments": Deployment.objects.count()}
    build_in_child()  # warm-up (see the module's docstring)
    export, child = build_in_child()
    if child.returncode != 0:
        return {"error": (child.stderr or child.stdout).strip().splitlines()[-1:], **population}
    built = json.loads(child.stdout.strip().splitlines()[-1])
    export.refresh_from_db()
    rows = sum(v for v in (export.row_counts or {}).values() if isinstance(v, int))
    floor = copy_floor(export)
    return {
        **population,
        "period": [start.isoformat(), end.isoformat()],
        "rows": rows,
        "row_counts": export.row_counts,
        "seconds": built["seconds"],
        "peak_mb": built["peak_mb"],
        "size": export.size,
        "floor": floor,
    }


def _build(export_id: int) -> None:
    """Child process: build one export, print seconds and this process's peak RSS."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from compliance.evidence.builder import build

    started = time.perf_counter()
    build(export_id)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


if __name__ == "__main__":
    _build(int(sys.argv[1]))
