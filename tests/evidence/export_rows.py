"""Evidence export rows in a given state, for the API and UI tests. A finished export gets a small
ZIP written under ``settings.EVIDENCE_ROOT`` (the tests point it at a temporary directory), so
these tests do not depend on the bundle builder."""
import hashlib
import io
import zipfile
from datetime import date

from django.conf import settings
from django.utils import timezone

from audit.models import EvidenceExport

PERIOD = (date(2025, 1, 1), date(2025, 3, 31))


def small_zip(marker: str) -> bytes:
    """A tiny bundle whose bytes depend on ``marker`` only: the members carry a fixed time, so the
    ZIP built for the download and the one a test rebuilds to compare are the same bytes even
    when a two-second boundary of the ZIP clock passes between them (it made two tests flaky)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, text in (("manifest.json", '{"marker": "%s"}' % marker), ("summary.html", f"<p>{marker}</p>")):
            bundle.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def export_row(requested_by, status="queued", framework="sox", period=PERIOD) -> EvidenceExport:
    """An export as the builder would leave it in ``status``; ``done`` ones have their ZIP on disk."""
    export = EvidenceExport.objects.create(
        framework=framework, period_start=period[0], period_end=period[1], requested_by=requested_by,
        requested_at=timezone.now(), status=status,
        progress={"queued": 0, "running": 40, "done": 100, "failed": 40}[status],
        error="database went away" if status == "failed" else "",
    )
    if status == EvidenceExport.Status.DONE:
        content = small_zip(f"export {export.pk}")
        relative = f"test/{export.pk}.zip"
        target = settings.EVIDENCE_ROOT / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        export.file, export.size, export.sha256 = relative, len(content), hashlib.sha256(content).hexdigest()
        export.finished_at = timezone.now()
        export.save(update_fields=["file", "size", "sha256", "finished_at"])
    return export
