"""API keys in the admin: listed and revoked, never issued here (a key is shown once, to its owner)."""
from django.contrib import admin
from django.contrib.auth import get_user_model

from governance import services
from core.admin import ServiceOnlyAdmin, run_per_object
from governance.admin.duties import is_governance_staff
from governance.models import (
    ApiToken,
)

User = get_user_model()


# --- API tokens ------------------------------------------------------------------------------------


@admin.register(ApiToken)
class ApiTokenAdmin(ServiceOnlyAdmin):
    """Keys are issued by ``api_token_create`` (the key is shown once, at issue); here they are
    listed and revoked. Only a short hint of the stored hash is ever shown."""

    actions = ["revoke_selected"]
    list_display = ["prefix", "name", "user", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_select_related = ["user"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "name", "prefix"]
    fields = ["user", "name", "prefix", "key_hash_hint", "created_at", "expires_at", "revoked_at", "last_used_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user_id=request.user.pk)

    def may_read(self, request) -> bool:
        return is_governance_staff(request)

    def has_view_permission(self, request, obj=None):
        return self.may_read(request) and (obj is None or request.user.is_superuser or obj.user_id == request.user.pk)

    @admin.display(description="Key hash")
    def key_hash_hint(self, obj):
        return f"{obj.key_hash[:8]}…"

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request, queryset):
        run_per_object(
            self, request, queryset, "revoked", lambda token: services.api_token_revoke(actor=request.user, token=token)
        )
