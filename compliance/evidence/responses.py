"""The HTTP answer for a downloaded bundle, shared by the portal, the admin and the API (each
calls ``services.export_download`` first, which checks the duty and records the download)."""
from django.http import FileResponse

from compliance.evidence.services import download_filename
from audit.models import EvidenceExport


def bundle_response(export: EvidenceExport, path) -> FileResponse:
    """Streams the ZIP at ``path`` as an attachment named after what it holds."""
    return FileResponse(
        open(path, "rb"), as_attachment=True, filename=download_filename(export), content_type="application/zip"
    )
