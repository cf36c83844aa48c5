"""Requesting, retrying and downloading evidence exports: the one door for the admin, the portal
and the API (ARCHITECTURE principle 1). Each needs ``export_evidence`` (RULES.md V3) and writes an
audit event in the same transaction."""
from datetime import date, datetime, timedelta, timezone as dt_timezone
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from audit.models import EvidenceExport

# Longest period one export may cover: a year of evidence is what auditors ask for; more is a
# mistake that would tie up a worker for nothing.
MAX_PERIOD_DAYS = 400


def may_export(user, at: datetime | None = None) -> bool:
    """Does ``user`` hold export_evidence now? Superusers get no bypass (V4: they act by the rules)."""
    from governance.duties import EXPORT_EVIDENCE
    from governance.selectors import has_duty

    return has_duty(user, EXPORT_EVIDENCE, at=at)


def require_export_duty(actor, at: datetime | None = None) -> None:
    """403 ``missing_duty`` unless ``actor`` holds export_evidence (RULES.md V3)."""
    from core.errors import Denied, Reason

    if not may_export(actor, at=at):
        raise Denied(Reason("missing_duty", "Evidence bundles need export_evidence."))


def exports_visible_to(user):
    """Every export for export_evidence holders (a compliance team shares its bundles), none for
    anyone else: clients answer 404 for a single export the caller may not see."""
    if not may_export(user):
        return EvidenceExport.objects.none()
    return EvidenceExport.objects.select_related("requested_by")


def _enqueue(export: EvidenceExport) -> None:
    """Hand the build to a worker once the row is committed. ``robust``: the request that queued
    the export has already committed it and its audit event, so a broker that is down (or an
    eager build that fails) must not turn that answer into a 500; the row stays visible as
    queued, or failed and retryable, and the error is logged."""
    from compliance.tasks import build_evidence_export

    transaction.on_commit(lambda: build_evidence_export.delay(export.pk), robust=True)


@transaction.atomic
def export_request(
    *, actor, framework: str, period_start: date, period_end: date, at: datetime | None = None
) -> EvidenceExport:
    """Queue an export of ``framework`` for the calendar days period_start..period_end (UTC, both
    included). 403 ``missing_duty`` without export_evidence; 400 on a bad framework or period."""
    at = at or timezone.now()
    require_export_duty(actor, at)
    errors = {}
    if framework not in EvidenceExport.Framework.values:
        errors["framework"] = [f"Choose one of: {', '.join(EvidenceExport.Framework.values)}."]
    if period_start and period_end:
        if period_end < period_start:
            errors["period_end"] = ["The period ends before it starts."]
        elif (period_end - period_start).days + 1 > MAX_PERIOD_DAYS:
            errors["period_end"] = [f"A period covers at most {MAX_PERIOD_DAYS} days."]
        elif period_start > at.date():
            errors["period_start"] = ["The period starts in the future."]
    else:
        if not period_start:
            errors["period_start"] = ["This field is required."]
        if not period_end:
            errors["period_end"] = ["This field is required."]
    if errors:
        raise ValidationError(errors)
    export = EvidenceExport.objects.create(
        framework=framework, period_start=period_start, period_end=period_end, requested_by=actor, requested_at=at
    )
    audit.record(
        "evidence.export_requested", actor=actor, target=export,
        data={"framework": framework, "period_start": period_start, "period_end": period_end}, at=at,
    )
    _enqueue(export)
    return export


@transaction.atomic
def export_retry(*, actor, export: EvidenceExport, at: datetime | None = None) -> EvidenceExport:
    """Run a failed export again (409 unless it failed)."""
    from core.errors import InvalidState

    at = at or timezone.now()
    require_export_duty(actor, at)
    export = EvidenceExport.objects.select_for_update().get(pk=export.pk)
    if export.status != EvidenceExport.Status.FAILED:
        raise InvalidState("Only a failed export can be retried.")
    export.status = EvidenceExport.Status.QUEUED
    export.progress = 0
    export.error = ""
    export.save(update_fields=["status", "progress", "error"])
    audit.record("evidence.export_retried", actor=actor, target=export, data={"framework": export.framework}, at=at)
    _enqueue(export)
    return export


def bundle_path(export: EvidenceExport) -> Path:
    return Path(settings.EVIDENCE_ROOT) / export.file


def download_filename(export: EvidenceExport) -> str:
    """The name a downloaded bundle is saved under: what it holds, and which export it came from."""
    return f"countersign-{export.framework}-{export.period_start}-{export.period_end}-{export.pk}.zip"


def _bundle_file(export: EvidenceExport) -> Path | None:
    """The bundle's file if it is on disk and under EVIDENCE_ROOT (``file`` is relative; a value
    climbing out of the root is never served)."""
    root = Path(settings.EVIDENCE_ROOT).resolve()
    path = bundle_path(export).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


@transaction.atomic
def export_download(*, actor, export: EvidenceExport, at: datetime | None = None) -> Path:
    """Record the download and return the bundle's path (409 unless the export is done and its
    file is there: a download that cannot happen is not recorded as one)."""
    from core.errors import InvalidState

    at = at or timezone.now()
    require_export_duty(actor, at)
    export = EvidenceExport.objects.get(pk=export.pk)
    if export.status != EvidenceExport.Status.DONE or not export.file:
        raise InvalidState("The bundle is not ready.")
    path = _bundle_file(export)
    if path is None:
        raise InvalidState("The bundle's file is missing from the evidence store; request a new export.")
    audit.record(
        "evidence.downloaded", actor=actor, target=export,
        data={"framework": export.framework, "sha256": export.sha256}, at=at,
    )
    return path


def period_bounds(export: EvidenceExport) -> tuple[datetime, datetime]:
    """[start, end) as aware UTC datetimes: period_start 00:00 up to the day after period_end."""
    start = datetime.combine(export.period_start, datetime.min.time(), tzinfo=dt_timezone.utc)
    return start, start + timedelta(days=(export.period_end - export.period_start).days + 1)
