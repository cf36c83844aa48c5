"""Timestamp authorities in the admin: a control page (changed only through ``control_change``;
switching one off, removing it or pointing it elsewhere waits for a second person), read by
superusers and security like the other configuration controls. The list shows how many seals each
has stamped and when it last did."""
from django.contrib import admin
from django.db.models import Count, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce

from audit.models import SealTimestamp, TimestampAuthority
from core.admin import ServiceOnlyAdmin
from governance.admin.duties import configures_controls
from governance.controls.admin import ControlForm, ControlledAdminMixin, DeletableControlMixin


class TimestampAuthorityForm(ControlForm):
    class Meta:
        model = TimestampAuthority
        fields = ["name", "url", "certificate", "hash_algorithm", "is_active"]


@admin.register(TimestampAuthority)
class TimestampAuthorityAdmin(DeletableControlMixin, ControlledAdminMixin, ServiceOnlyAdmin):
    control_kind = "audit.timestampauthority"
    form = TimestampAuthorityForm
    list_display = ["name", "url", "hash_algorithm", "is_active", "seals_stamped", "last_stamped"]
    list_filter = ["is_active"]
    search_fields = ["name"]

    def may_read(self, request) -> bool:
        return configures_controls(request)

    def get_queryset(self, request):
        stamps = SealTimestamp.objects.filter(authority=OuterRef("pk")).values("authority")
        return super().get_queryset(request).annotate(
            stamped=Coalesce(Subquery(stamps.annotate(n=Count("pk")).values("n")[:1]), 0),
            last_gen_time=Subquery(stamps.annotate(t=Max("gen_time")).values("t")[:1]),
        )

    @admin.display(description="Seals stamped")
    def seals_stamped(self, authority):
        return authority.stamped

    @admin.display(description="Last token")
    def last_stamped(self, authority):
        return authority.last_gen_time or "never"
