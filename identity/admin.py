"""Group role mappings are controls (identity.controls): changed only through ``control_change``.
Adding one or switching it back on waits for a second person; switching it off applies at once."""
from django.contrib import admin

from core.admin import ServiceOnlyAdmin
from governance.admin.duties import configures_controls
from governance.controls.admin import ControlledAdminMixin
from identity.models import GroupRoleMapping


@admin.register(GroupRoleMapping)
class GroupRoleMappingAdmin(ControlledAdminMixin, ServiceOnlyAdmin):
    control_kind = "identity.grouprolemapping"
    list_display = ["group_name", "role", "team", "environment", "is_active"]
    list_select_related = ["role", "team", "environment"]
    list_filter = ["is_active", "role", "team"]
    search_fields = ["group_name"]

    def may_read(self, request) -> bool:
        return configures_controls(request)
