"""Witnesses in the admin: a control page (changed only through ``control_change``; changing a
witness's key or name, or switching it off, waits for a second person), read by superusers and
security like the other configuration controls. Each witness's cosignatures are listed on its page;
every seal's page lists the witnesses that cosigned its checkpoint (compliance/admin.py)."""
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.utils.html import format_html_join

from compliance.witnesses.models import Cosignature, Witness
from core.admin import ServiceOnlyAdmin
from governance.admin.duties import configures_controls
from governance.controls.admin import ControlForm, ControlledAdminMixin


class WitnessForm(ControlForm):
    class Meta:
        model = Witness
        fields = ["name", "public_key", "is_active"]


@admin.register(Witness)
class WitnessAdmin(ControlledAdminMixin, ServiceOnlyAdmin):
    control_kind = "compliance.witness"
    form = WitnessForm
    list_display = ["name", "is_active", "cosignature_count", "latest_cosigned"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    readonly_fields = ["recent_cosignatures"]

    def may_read(self, request) -> bool:
        return configures_controls(request)

    def get_fields(self, request, obj=None):
        return ["name", "public_key", "is_active", *(["recent_cosignatures"] if obj is not None else [])]

    def get_queryset(self, request):
        """Each row's count and latest tree size in the list's one query."""
        latest = Cosignature.objects.filter(witness=OuterRef("pk")).order_by("-seal_number").values("tree_size")[:1]
        return super().get_queryset(request).annotate(cosigned=Count("cosignatures"), latest_size=Subquery(latest))

    @admin.display(description="Cosignatures")
    def cosignature_count(self, witness):
        return witness.cosigned

    @admin.display(description="Latest cosigned tree size")
    def latest_cosigned(self, witness):
        return witness.latest_size or "—"

    @admin.display(description="Recent cosignatures (seal, tree size, witness time)")
    def recent_cosignatures(self, witness):
        rows = witness.cosignatures.order_by("-seal_number")[:20]
        return format_html_join("", "<div>seal {} · tree size {} · time {}</div>",
                                ((c.seal_number, c.tree_size, c.timestamp) for c in rows)) or "—"
