"""SIEM sinks in the admin: a control page (changed only through ``control_change``; switching a
sink off or pointing it elsewhere waits for a second person), read by superusers and security like
the other configuration controls. The list shows each sink's lag; token and secret are write-only."""
from django import forms
from django.contrib import admin

from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.models import AuditEvent, ChainHead
from compliance.siem.models import SiemSink
from core.admin import ServiceOnlyAdmin
from governance.admin.duties import configures_controls
from governance.controls.admin import ControlForm, ControlledAdminMixin

WRITE_ONLY = ("token", "secret")


class SiemSinkForm(ControlForm):
    """Token and secret are never rendered; leaving one empty keeps the stored value."""

    token = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="HEC token or bearer token. Never shown again; leave empty to keep the current one.",
    )
    secret = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="HMAC-SHA256 key that signs each batch. Never shown again; leave empty to keep the current one.",
    )
    clear_secret = forms.BooleanField(required=False, label="Remove the stored HMAC secret")

    class Meta:
        model = SiemSink
        fields = ["name", "transport", "destination", "format", "token", "secret", "ca_certificate", "actions",
                  "batch_size", "is_active"]

    def control_values(self, data) -> dict:
        values = super().control_values({**data})
        for name in WRITE_ONLY:
            values.pop(name, None)
            if data.get(name):
                values[name] = data[name]
        if data.get("clear_secret"):
            values["secret"] = ""  # removing the stored secret, not setting one  # nosec B105
        return values

    def has_changed(self):
        return (super().has_changed() or any(self.data.get(name) for name in WRITE_ONLY)
                or bool(self.cleaned_data.get("clear_secret")))


@admin.register(SiemSink)
class SiemSinkAdmin(ControlledAdminMixin, ServiceOnlyAdmin):
    control_kind = "compliance.siemsink"
    form = SiemSinkForm
    list_display = ["name", "transport", "format", "is_active", "lag_events", "oldest_unsent", "failures",
                    "has_secret"]
    list_filter = ["transport", "format", "is_active"]
    list_select_related = ["cursor"]
    search_fields = ["name"]

    def may_read(self, request) -> bool:
        return configures_controls(request)

    def get_queryset(self, request):
        """Each row's lag in the list's one query: the chain head, and the oldest event past the cursor."""
        acknowledged = Coalesce(OuterRef("cursor__acknowledged_sequence"), 0)
        return super().get_queryset(request).annotate(
            head=Coalesce(Subquery(ChainHead.objects.filter(pk=1).values("sequence")[:1]), 0),
            oldest_unsent_at=Subquery(AuditEvent.objects.filter(sequence__gt=acknowledged).order_by("sequence")
                                      .values("created_at")[:1]),
        )

    @admin.display(description="Lag (events)")
    def lag_events(self, sink):
        cursor = getattr(sink, "cursor", None)
        return max(getattr(sink, "head", 0) - (cursor.acknowledged_sequence if cursor is not None else 0), 0)

    @admin.display(description="Oldest unsent (s)")
    def oldest_unsent(self, sink):
        oldest = getattr(sink, "oldest_unsent_at", None)
        return round((timezone.now() - oldest).total_seconds(), 1) if oldest else 0

    @admin.display(description="Failures since last ack")
    def failures(self, sink):
        cursor = getattr(sink, "cursor", None)
        return f"{cursor.failures}: {cursor.last_error[:60]}" if cursor is not None and cursor.failures else 0

    @admin.display(description="HMAC", boolean=True)
    def has_secret(self, sink):
        return bool(sink.secret)
