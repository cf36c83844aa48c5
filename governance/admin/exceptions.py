"""SoD exceptions in the admin (G3): requested through the add form, approved and revoked by security."""
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Q

from governance import selectors, services
from core.admin import OfferedModelChoiceField, ReasonActionForm, ServiceAddForm, run_per_object
from core.memo import per_request
from governance.admin.duties import GovernanceAdmin, is_security, may_manage_roles
from governance.models import (
    Membership,
    SoDException,
)

User = get_user_model()


# --- SoD exceptions --------------------------------------------------------------------------------


def sod_exceptions_visible_to(user):
    """Defined here until governance.selectors has one: like V2, security and audit viewers see
    every exception, managers those of their teams' members, everyone their own."""
    if selectors.sees_all_assignments(user):
        return SoDException.objects.all()
    members = Membership.objects.filter(team__in=selectors.teams_managed_by(user)).values("user_id")
    return SoDException.objects.filter(Q(user_id=user.pk) | Q(user_id__in=members))


class SoDExceptionRequestForm(ServiceAddForm):
    class Meta:
        model = SoDException
        fields = ["user", "duty_a", "duty_b", "environment", "justification", "expires_at"]

    def perform(self, data):
        return services.sod_exception_request(
            actor=self.actor,
            user=data["user"],
            duty_a=data["duty_a"],
            duty_b=data["duty_b"],
            environment=data.get("environment"),
            justification=data.get("justification") or "",
            expires_at=data.get("expires_at"),
        )


@admin.register(SoDException)
class SoDExceptionAdmin(GovernanceAdmin):
    form = SoDExceptionRequestForm
    action_form = ReasonActionForm
    actions = ["approve_selected", "revoke_selected"]
    list_display = [
        "id", "user", "duty_a", "duty_b", "environment", "status", "expires_at", "requested_by", "approved_by",
    ]
    list_select_related = ["user", "environment", "requested_by", "approved_by"]
    list_filter = ["status"]
    search_fields = ["user__username"]
    add_fields = ["user", "duty_a", "duty_b", "environment", "justification", "expires_at"]
    detail_fields = [
        "user", "duty_a", "duty_b", "environment", "justification", "expires_at", "status", "requested_by",
        "created_at", "approved_by", "approved_at",
    ]

    def visible(self, request):
        return per_request(request, "visible_sod_exceptions", lambda: sod_exceptions_visible_to(request.user))

    def has_add_permission(self, request):
        return may_manage_roles(request) or is_security(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request):
        return request.user.is_superuser or is_security(request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            offered = User.objects.filter(is_active=True).order_by("username")
            if not (request.user.is_superuser or is_security(request)):
                offered = selectors.members_grantable_by(request.user)
            return super().formfield_for_foreignkey(
                db_field, request, form_class=OfferedModelChoiceField,
                queryset=User.objects.order_by("username"), offered=offered, **kwargs,
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_form(self, request, form, change):
        return form.instance

    def save_model(self, request, obj, form, change):
        """``services.sod_exception_request`` already wrote the request while validating the form."""

    def save_related(self, request, form, formsets, change):
        """Exceptions have no related rows the admin edits."""

    @admin.action(description="Approve selected pending exceptions", permissions=["decide"])
    def approve_selected(self, request, queryset):
        run_per_object(
            self, request, queryset, "approved",
            lambda exception: services.sod_exception_approve(actor=request.user, exception=exception),
        )

    @admin.action(description="Revoke selected exceptions (give a reason)", permissions=["decide"])
    def revoke_selected(self, request, queryset):
        reason = request.POST.get("reason", "")
        run_per_object(
            self, request, queryset, "revoked",
            lambda exception: services.sod_exception_revoke(actor=request.user, exception=exception, reason=reason),
        )
