"""The portal's evidence page (RULES.md L3, V3): compliance staff request a bundle for a framework
and period, watch it build and download it.

Only holders of export_evidence have this page: for anyone else it does not exist (404), as for a
change or review item they may not see; the top bar shows them no link to it. Requests and
downloads go through ``compliance.evidence.services``, which records each as an audit event; a refusal
is rendered with its reason codes (403 rule, 409 state, 400 bad input). While an export is queued
or running the page reloads itself with a ``<meta http-equiv="refresh">``: no JavaScript, so the
page stays within a Content-Security-Policy without inline script.
"""
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from compliance.evidence import services
from compliance.evidence.responses import bundle_response
from core.api import MAX_ID
from compliance.evidence.forms import ExportRequestForm, year_to_date
from audit.models import EvidenceExport
from core.errors import Reason, Refused

EXPORT_ROWS = 50
REFRESH_SECONDS = 5
IN_PROGRESS = {EvidenceExport.Status.QUEUED, EvidenceExport.Status.RUNNING}


@dataclass(frozen=True)
class Refusal:
    """What the service said no to, shown above the page."""

    title: str
    reasons: list[Reason]


def _require_holder(user) -> None:
    if not services.may_export(user):
        raise Http404("No such page.")


def _page(request, *, form=None, refusal: Refusal | None = None, status: int = 200):
    if form is None:
        start, end = year_to_date()
        form = ExportRequestForm(initial={"framework": EvidenceExport.Framework.SOX, "period_start": start,
                                          "period_end": end})
    exports = list(services.exports_visible_to(request.user)[:EXPORT_ROWS])
    context = {
        "form": form,
        "exports": exports,
        "refusal": refusal,
        "refresh_seconds": REFRESH_SECONDS if any(e.status in IN_PROGRESS for e in exports) else None,
        "max_period_days": services.MAX_PERIOD_DAYS,
    }
    return render(request, "compliance/evidence_exports.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def evidence_exports(request):
    _require_holder(request.user)
    if request.method != "POST":
        return _page(request)
    form = ExportRequestForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    try:
        export = services.export_request(actor=request.user, **form.cleaned_data)
    except Refused as refused:
        return _page(request, form=form, refusal=Refusal("Not requested", refused.reasons),
                     status=refused.status_code)
    except ValidationError as error:
        form.add_service_errors(error)
        return _page(request, form=form, status=400)
    messages.success(request, f"{export} is requested. This page shows its progress, and the download once it is built.")
    return redirect("evidence:exports")


@login_required
@require_GET
def evidence_export_download(request, pk: int):
    _require_holder(request.user)
    export = services.exports_visible_to(request.user).filter(pk=pk).first() if pk <= MAX_ID else None
    if export is None:
        raise Http404("No evidence export found.")
    try:
        bundle = services.export_download(actor=request.user, export=export, at=timezone.now())
    except Refused as refused:
        return _page(request, refusal=Refusal(f"Not downloaded: {export}", refused.reasons),
                     status=refused.status_code)
    return bundle_response(export, bundle)
