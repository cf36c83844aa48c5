"""Evidence exports in the admin (RULES.md L3, V3, V4): holders of export_evidence request a bundle
for a framework and period, follow its progress, download it and retry a failed one. Every write
and every download goes through ``compliance.evidence.services`` (which records the audit event); the
admin never saves an ``EvidenceExport`` itself. Superusers see the list (V4) but, like everyone,
request and download only if they hold the duty.

Imported from ``audit/admin.py``. The evidence package reads other apps by design
(ARCHITECTURE principle 5), so it reuses governance's admin helpers for service-backed forms."""
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from audit import signing
from compliance.evidence import services
from compliance.evidence.responses import bundle_response
from core.api import MAX_ID
from audit.models import EvidenceExport
from core.admin import ServiceAddForm, ServiceOnlyAdmin, run_per_object
from core.memo import per_request
from core.errors import Refused


def _may_export(request) -> bool:
    """Staff holding export_evidence now; memoised per request (the admin asks many times a page)."""
    user = request.user
    return per_request(request, "exports_evidence",
                       lambda: user.is_active and user.is_staff and services.may_export(user))


def _may_see(request) -> bool:
    user = request.user
    return user.is_active and user.is_staff and (user.is_superuser or _may_export(request))


def signing_key_note() -> str:
    """The public key's fingerprint, so an auditor can check the key a bundle claims."""
    try:
        fingerprint = signing.fingerprint()
    except (ImproperlyConfigured, OSError, ValueError):
        return "No signing key is configured: bundles cannot be built until SIGNING_KEY_FILE exists."
    return (
        f"Bundles are signed with the Ed25519 key {fingerprint} "
        "(manage.py signing_key --public prints it; manage.py evidence_verify checks a bundle)."
    )


class ExportRequestAdminForm(ServiceAddForm):
    """The add page is a request form: validating it is calling ``export_request``."""

    class Meta:
        model = EvidenceExport
        fields = ["framework", "period_start", "period_end"]
        help_texts = {"period_start": "UTC calendar day, included.", "period_end": "UTC calendar day, included."}

    def perform(self, data):
        return services.export_request(
            actor=self.actor, framework=data["framework"], period_start=data["period_start"],
            period_end=data["period_end"],
        )


@admin.register(EvidenceExport)
class EvidenceExportAdmin(ServiceOnlyAdmin):
    form = ExportRequestAdminForm
    actions = ["retry_selected"]
    list_display = [
        "id", "framework", "period_start", "period_end", "requested_by", "requested_at", "status", "progress_percent",
        "sha256_short", "size", "download_link",
    ]
    list_display_links = ["id"]
    list_select_related = ["requested_by"]
    list_filter = ["status", "framework"]
    add_fields = ["framework", "period_start", "period_end"]
    detail_fields = [
        "framework", "period_start", "period_end", "requested_by", "requested_at", "status", "progress_percent",
        "attempts", "started_at", "finished_at", "size", "sha256", "row_counts", "error", "download_link",
    ]

    def may_read(self, request):
        return _may_see(request)

    def has_add_permission(self, request):
        return _may_export(request)

    def has_retry_permission(self, request):
        return _may_export(request)

    def get_urls(self):
        download = path(
            "<int:pk>/download/", self.admin_site.admin_view(self.download_view),
            name="audit_evidenceexport_download",
        )
        return [download, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"subtitle": signing_key_note(), **(extra_context or {})})

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, {"title": "Request an evidence export", **(extra_context or {})})

    # --- Writes: the service did them while the form validated -------------------------------------

    def save_form(self, request, form, change):
        return form.instance

    def save_model(self, request, obj, form, change):
        """``export_request`` wrote the export and its audit event while validating the form."""

    def save_related(self, request, form, formsets, change):
        """Exports have no related rows the admin edits."""

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, f"{obj} is requested; this list shows its progress.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:audit_evidenceexport_changelist"))

    @admin.action(description="Retry selected failed exports", permissions=["retry"])
    def retry_selected(self, request, queryset):
        run_per_object(
            self, request, queryset, "queued again",
            lambda export: services.export_retry(actor=request.user, export=export),
        )

    def download_view(self, request, pk: int):
        """Streams the bundle; ``export_download`` refuses (and records nothing) unless the caller
        holds export_evidence and the bundle is ready."""
        if not self.has_view_permission(request) or not 0 < pk <= MAX_ID:
            raise Http404("No evidence export found.")
        export = get_object_or_404(EvidenceExport, pk=pk)
        try:
            bundle = services.export_download(actor=request.user, export=export)
        except Refused as refusal:
            for reason in refusal.reasons:
                self.message_user(request, f"{export}: not downloaded. {reason.code}: {reason.message}", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:audit_evidenceexport_changelist"))
        return bundle_response(export, bundle)

    # --- Columns -----------------------------------------------------------------------------------

    @admin.display(description="Progress")
    def progress_percent(self, export):
        return f"{export.progress}%"

    @admin.display(description="SHA-256")
    def sha256_short(self, export):
        if not export.sha256:
            return "—"
        return format_html('<code title="{}">{}…</code>', export.sha256, export.sha256[:12])

    @admin.display(description="Bundle")
    def download_link(self, export):
        if export.status != EvidenceExport.Status.DONE:
            return "—"
        url = reverse("admin:audit_evidenceexport_download", args=[export.pk])
        return format_html('<a href="{}">Download ZIP</a>', url)
