"""The audit trail in the admin: read-only, for holders of view_audit and security (RULES.md V3)."""
from django.contrib import admin

from audit.models import AuditEvent


def _may_read_trail(request) -> bool:
    """view_audit or security_approve holders, and superusers (V3, V4); memoised per request.

    The audit app's recording core imports no other app (ARCHITECTURE principle 5). This admin
    module is not part of that core, and only asks governance who holds a duty, so it imports the
    selector lazily here rather than at module level."""
    if not hasattr(request, "_countersign_reads_audit"):
        from governance import duties
        from governance.selectors import has_duty

        user = request.user
        request._countersign_reads_audit = (
            user.is_active
            and user.is_staff
            and (user.is_superuser or has_duty(user, duties.VIEW_AUDIT) or has_duty(user, duties.SECURITY_APPROVE))
        )
    return request._countersign_reads_audit


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
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

    def has_module_permission(self, request):
        return _may_read_trail(request)

    def has_view_permission(self, request, obj=None):
        return _may_read_trail(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
