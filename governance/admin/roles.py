"""Roles with their duties, and conflict rules, in the admin: controls (RULES.md section 8)."""
from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model

from governance import duties
from governance.controls.admin import ControlForm, ControlledAdmin
from governance.models import (
    ConflictRule,
    Role,
)

User = get_user_model()


# --- Roles and conflict rules ----------------------------------------------------------------------


class RoleForm(ControlForm):
    duties = forms.MultipleChoiceField(
        choices=duties.CHOICES, required=False, widget=forms.CheckboxSelectMultiple, label="Duties"
    )

    class Meta:
        model = Role
        fields = ["name", "slug", "description", "scope", "is_privileged"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["duties"].initial = sorted(self.instance.duties.values_list("duty", flat=True))

    def clean_duties(self):
        return sorted(self.cleaned_data.get("duties") or [])


@admin.register(Role)
class RoleAdmin(ControlledAdmin):
    control_kind = "governance.role"
    form = RoleForm
    list_display = ["name", "slug", "scope", "is_privileged", "duty_list"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("duties")

    def get_fields(self, request, obj=None):
        base = ["name", "slug", "description", "scope", "is_privileged"]
        return [*base, "duties"] if self.has_change_permission(request, obj) else [*base, "duty_list"]

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if self.has_change_permission(request, obj) else {}

    @admin.display(description="Duties")
    def duty_list(self, obj):
        return ", ".join(sorted(role_duty.duty for role_duty in obj.duties.all()))


@admin.register(ConflictRule)
class ConflictRuleAdmin(ControlledAdmin):
    control_kind = "governance.conflictrule"
    list_display = ["duty_a", "duty_b", "tier", "is_active", "description"]
    list_filter = ["is_active", "tier"]
    fields = ["duty_a", "duty_b", "tier", "description", "is_active"]
