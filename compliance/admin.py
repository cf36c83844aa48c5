"""The audit app in the admin: the trail and alerts, read by holders of view_audit and security
(RULES.md V3) and never written here, except alerts resolved by security through their service;
the delivery queue for superusers and security. Notification channels are controls: their admin
lives with the other controls (``governance.controls.alerting_admin``)."""
from django import forms
from django.contrib import admin

from core.admin import ServiceOnlyAdmin, run_per_object
from core.memo import per_request
from governance import duties
from governance.selectors import has_duty
from django.contrib.admin import helpers

from compliance import alerts as services
from audit.models import Alert, AuditEvent, AuditSeal, OutboxMessage


def _may_read_trail(request) -> bool:
    """view_audit or security_approve holders, and superusers (V3, V4); memoised per request."""
    user = request.user
    return per_request(request, "reads_audit", lambda: (
        user.is_active
        and user.is_staff
        and (user.is_superuser or has_duty(user, duties.VIEW_AUDIT) or has_duty(user, duties.SECURITY_APPROVE))
    ))


@admin.register(AuditEvent)
class AuditEventAdmin(ServiceOnlyAdmin):
    """Events are written by ``audit.record`` only, so every write permission is off. The
    changelist touches no foreign key (``actor_username`` is a snapshot), so it runs a fixed number
    of queries however long the trail is."""

    list_display = ["sequence", "created_at", "actor_username", "action", "target_repr", "environment", "team", "ip"]
    list_display_links = ["sequence"]
    list_filter = ["action"]
    search_fields = ["actor_username", "target_repr", "request_id"]
    fields = [
        "sequence", "created_at", "actor_username", "action", "target_type", "target_id", "target_repr",
        "environment", "team", "ip", "user_agent", "request_id", "data", "prev_hash", "hash",
    ]
    readonly_fields = fields
    show_full_result_count = False

    def may_read(self, request) -> bool:
        return _may_read_trail(request)


@admin.register(AuditSeal)
class AuditSealAdmin(ServiceOnlyAdmin):
    """Seals are written by the hourly ``audit.tasks.seal_chain`` only. The changelist publishes the
    public key and its fingerprint, so an auditor can check seals and evidence bundles with it
    (RULES.md L2, L3). Readers as for the trail (V3)."""

    list_display = ["number", "created_at", "sequence", "head_hash", "key_fingerprint_hint", "signature_hint"]
    list_display_links = ["number"]
    fields = ["number", "created_at", "sequence", "head_hash", "prev_signature", "key_fingerprint", "signature",
              "tree_size", "root_hash", "checkpoint", "cosigned_by", "outside_timestamps"]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="Outside timestamps (RFC 3161)")
    def outside_timestamps(self, seal):
        """The authorities' tokens over this seal's checkpoint (audit.timestamps)."""
        return "; ".join(f"{t.authority_name} at {t.gen_time:%Y-%m-%d %H:%M:%S} UTC (serial {t.serial})"
                         for t in seal.timestamps.order_by("authority_name")) or "none yet"

    def may_read(self, request) -> bool:
        return _may_read_trail(request)

    @admin.display(description="Cosigned by (witness, its time)")
    def cosigned_by(self, seal):
        from django.utils.html import format_html_join

        from compliance.witnesses.models import Cosignature

        rows = Cosignature.objects.filter(seal_number=seal.number).select_related("witness").order_by("witness__name")
        return format_html_join("", "<div>{} · {}</div>", ((c.witness.name, c.timestamp) for c in rows)) or "—"

    @admin.display(description="Key fingerprint")
    def key_fingerprint_hint(self, seal):
        return seal.key_fingerprint[:16] + "…"

    @admin.display(description="Signature")
    def signature_hint(self, seal):
        return seal.signature[:16] + "…"

    def changelist_view(self, request, extra_context=None):
        # The key module is loaded only here: reading the trail does not need the private key.
        from django.core.exceptions import ImproperlyConfigured

        from audit import signing

        try:
            published = {"public_key_pem": signing.public_key_pem(), "public_key_fingerprint": signing.fingerprint()}
        except (ImproperlyConfigured, OSError, ValueError) as exc:
            published = {"public_key_error": str(exc)}
        return super().changelist_view(request, extra_context={**(extra_context or {}), **published})


def _is_security(request) -> bool:
    """Staff holding security_approve now; memoised per request."""
    user = request.user
    return per_request(request, "is_security",
                       lambda: user.is_active and user.is_staff and has_duty(user, duties.SECURITY_APPROVE))


class ResolutionActionForm(helpers.ActionForm):
    """The changelist's action bar, with the resolution that resolving needs."""

    resolution = forms.CharField(required=False, label="Resolution (what was found and done):")


@admin.register(Alert)
class AlertAdmin(ServiceOnlyAdmin):
    """Alerts are raised by the detectors (``audit.alerts.raise_alert``) and resolved by security
    through ``alert_resolve``; nothing else changes them. Readers as for the trail (V3)."""

    action_form = ResolutionActionForm
    actions = ["resolve_selected"]
    list_display = ["id", "created_at", "severity", "kind", "subject", "team", "environment", "status", "resolved_by"]
    list_display_links = ["id", "subject"]
    list_select_related = ["resolved_by"]
    list_filter = ["status", "severity", "kind"]
    search_fields = ["subject", "kind", "dedupe_key"]
    fields = [
        "kind", "severity", "subject", "details", "actor", "environment", "team", "dedupe_key", "status", "created_at",
        "resolution", "resolved_by", "resolved_at",
    ]
    readonly_fields = fields

    def may_read(self, request) -> bool:
        return _may_read_trail(request)

    def has_resolve_permission(self, request):
        return _is_security(request)

    @admin.action(description="Resolve selected alerts (give the resolution)", permissions=["resolve"])
    def resolve_selected(self, request, queryset):
        resolution = request.POST.get("resolution", "")
        run_per_object(
            self, request, queryset, "resolved",
            lambda alert: services.alert_resolve(actor=request.user, alert=alert, resolution=resolution),
        )


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ServiceOnlyAdmin):
    """The delivery queue, read-only: what was sent, retried, or given up on (RULES.md E3)."""

    list_display = ["id", "topic", "created_at", "attempts", "delivered_at", "failed_at", "error_hint"]
    list_filter = ["topic", ("delivered_at", admin.EmptyFieldListFilter), ("failed_at", admin.EmptyFieldListFilter)]
    fields = [
        "topic", "payload", "created_at", "available_at", "dispatched_at", "delivered_at", "attempts", "failed_at",
        "last_error",
    ]
    readonly_fields = fields
    show_full_result_count = False

    def may_read(self, request) -> bool:
        user = request.user
        return user.is_active and user.is_staff and (user.is_superuser or _is_security(request))

    @admin.display(description="Last error")
    def error_hint(self, message):
        return (message.last_error[:80] + "…") if len(message.last_error) > 80 else message.last_error


# Evidence exports register their admin pages in their own module.
from compliance.evidence import admin as _evidence_admin  # noqa: E402,F401
# SIEM sinks are controls; their admin page lives with them.
from compliance.siem import admin as _siem_admin  # noqa: E402,F401
from compliance.timestamps import admin as _timestamps_admin  # noqa: E402,F401
# Witnesses are controls too.
from compliance.witnesses import admin as _witness_admin  # noqa: E402,F401
