"""Role assignments in the admin: requested through ``role_grant`` (the add form validates by calling
it), approved, rejected and revoked through their services (G1–G5)."""
from django.contrib import admin, messages
from django.contrib.auth import get_user_model

from governance import selectors, services
from core.admin import OfferedModelChoiceField, ReasonActionForm, ServiceAddForm, run_per_object
from core.memo import per_request
from governance.admin.duties import GovernanceAdmin, is_security, may_manage_roles
from governance.models import (
    RoleAssignment,
    Team,
)

User = get_user_model()


# --- Role assignments ------------------------------------------------------------------------------


class RoleGrantForm(ServiceAddForm):
    class Meta:
        model = RoleAssignment
        fields = ["user", "role", "team", "environment", "justification", "expires_at"]

    def perform(self, data):
        return services.role_grant(
            actor=self.actor,
            user=data["user"],
            role=data["role"],
            team=data["team"],
            environment=data.get("environment"),
            justification=data.get("justification") or "",
            expires_at=data.get("expires_at"),
        )


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(GovernanceAdmin):
    form = RoleGrantForm
    action_form = ReasonActionForm
    actions = ["approve_selected", "reject_selected", "revoke_selected"]
    list_display = ["id", "user", "role", "team", "environment", "status", "expires_at", "requested_by", "approved_by"]
    list_display_links = ["id", "user"]
    list_select_related = ["user", "role", "team", "environment", "requested_by", "approved_by"]
    list_filter = [
        "status",
        ("role", admin.RelatedOnlyFieldListFilter),
        ("team", admin.RelatedOnlyFieldListFilter),
        ("environment", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["user__username"]
    add_fields = ["user", "role", "team", "environment", "justification", "expires_at"]
    detail_fields = [
        "user", "role", "team", "environment", "justification", "status", "requested_by", "created_at",
        "approved_by", "approved_at", "expires_at", "ended_by", "ended_at", "end_reason", "last_used_at",
        "sod_exception",
    ]

    def visible(self, request):
        return per_request(request, "visible_assignments", lambda: selectors.assignments_visible_to(request.user))

    def has_add_permission(self, request):
        return may_manage_roles(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request):
        """Approve, reject and revoke are offered to those the services might allow (G4, G5);
        the services decide each grant."""
        return may_manage_roles(request) or is_security(request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            offered = User.objects.filter(is_active=True).order_by("username")
            if not request.user.is_superuser:
                offered = selectors.members_grantable_by(request.user)
            return super().formfield_for_foreignkey(
                db_field, request, form_class=OfferedModelChoiceField,
                queryset=User.objects.order_by("username"), offered=offered, **kwargs,
            )
        if db_field.name == "team":
            return super().formfield_for_foreignkey(
                db_field, request, form_class=OfferedModelChoiceField,
                queryset=Team.objects.all(), offered=selectors.teams_managed_by(request.user), **kwargs,
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_form(self, request, form, change):
        return form.instance

    def save_model(self, request, obj, form, change):
        """``services.role_grant`` already wrote the grant while validating the form."""
        if obj.status == RoleAssignment.Status.PENDING:
            self.message_user(
                request, f"{obj} is privileged: it stays pending until a second person approves it.", messages.WARNING
            )

    def save_related(self, request, form, formsets, change):
        """Grants have no related rows the admin edits."""

    @admin.action(description="Approve selected pending grants", permissions=["decide"])
    def approve_selected(self, request, queryset):
        run_per_object(
            self, request, queryset, "approved",
            lambda assignment: services.role_assignment_approve(actor=request.user, assignment=assignment),
        )

    @admin.action(description="Reject selected pending grants", permissions=["decide"])
    def reject_selected(self, request, queryset):
        reason = request.POST.get("reason", "")
        run_per_object(
            self, request, queryset, "rejected",
            lambda grant: services.role_assignment_reject(actor=request.user, assignment=grant, reason=reason),
        )

    @admin.action(description="Revoke selected grants (give a reason)", permissions=["decide"])
    def revoke_selected(self, request, queryset):
        reason = request.POST.get("reason", "")
        run_per_object(
            self, request, queryset, "revoked",
            lambda grant: services.role_assignment_revoke(actor=request.user, assignment=grant, reason=reason),
        )
