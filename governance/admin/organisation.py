"""Teams (with their members) and environments in the admin: controls changed through
``control_change``, members through the membership services; guardian's object-permission pages
list the derived permissions and refuse every edit (ARCHITECTURE principle 3)."""
from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from guardian.admin import GuardedModelAdmin
from guardian.shortcuts import get_groups_with_perms, get_perms_for_model, get_users_with_perms

from governance import selectors, services
from governance.admin.duties import is_governance_staff, may_manage_roles, sees_all_assignments
from governance.controls import services as control_services
from governance.controls.admin import ControlledAdmin
from governance.controls.registry import EVERYWHERE
from governance.models import (
    Environment,
    Membership,
    Team,
)

User = get_user_model()


# --- Teams and environments: guardian's object-permission pages, read-only -----------------------


class ReadOnlyObjectPermissionsAdmin(ControlledAdmin, GuardedModelAdmin):
    """Guardian's "Object permissions" page lists who holds which duty on the object, but its
    forms are gone and its edit views answer 403: those rows are derived from role assignments
    and only ``governance.permissions.sync_permissions`` writes them (ARCHITECTURE principle 3)."""

    change_form_template = "admin/governance/guarded_change_form.html"
    obj_perms_manage_template = "admin/governance/obj_perms_readonly.html"

    def may_view_object_permissions(self, request, obj) -> bool:
        raise NotImplementedError

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        context = {"can_view_object_permissions": obj is not None and self.may_view_object_permissions(request, obj)}
        return super().change_view(request, object_id, form_url, {**context, **(extra_context or {})})

    def obj_perms_manage_view(self, request, object_pk):
        if request.method != "GET":
            raise PermissionDenied
        obj = get_object_or_404(self.get_queryset(request), pk=object_pk)
        if not self.may_view_object_permissions(request, obj):
            raise PermissionDenied
        users_perms = get_users_with_perms(obj, attach_perms=True, with_group_users=False)
        groups_perms = get_groups_with_perms(obj, attach_perms=True)
        context = {
            **self.get_obj_perms_base_context(request, obj),
            "model_perms": get_perms_for_model(obj).filter(codename__startswith="duty_").order_by("codename"),
            "users_perms": dict(sorted(users_perms.items(), key=lambda item: item[0].get_username())),
            "groups_perms": dict(sorted(groups_perms.items(), key=lambda item: item[0].name)),
        }
        request.current_app = self.admin_site.name
        return render(request, self.obj_perms_manage_template, context)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        raise PermissionDenied

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        raise PermissionDenied


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "is_manager"]

    def clean_user(self):
        user = self.cleaned_data["user"]
        if self.instance.pk and user != self.instance.user:
            raise ValidationError("To move someone, remove this row and add a new one.")
        return user


class MembershipInline(admin.TabularInline):
    """Members of the team. Saves and removals go through ``membership_set`` / ``membership_remove``
    (see ``TeamAdmin.save_formset``); removing a member revokes their grants in the team."""

    model = Membership
    form = MembershipForm
    fields = ["user", "is_manager", "joined_at"]
    readonly_fields = ["joined_at"]
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def has_view_permission(self, request, obj=None):
        return is_governance_staff(request)

    def has_add_permission(self, request, obj=None):
        return obj is not None and may_manage_roles(request, obj)

    def has_change_permission(self, request, obj=None):
        return obj is not None and may_manage_roles(request, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is not None and may_manage_roles(request, obj)


@admin.register(Team)
class TeamAdmin(ReadOnlyObjectPermissionsAdmin):
    """A team is a control (its time zone decides off-hours alerts, its on-call reviewers confirm
    emergencies): changed through ``control_change``; its members through the membership services."""

    control_kind = "governance.team"
    inlines = [MembershipInline]
    list_display = ["name", "slug", "time_zone"]
    search_fields = ["name", "slug"]
    fields = ["name", "slug", "time_zone", "on_call_reviewers"]

    def get_queryset(self, request):
        if sees_all_assignments(request):
            return Team.objects.all()
        return selectors.teams_managed_by(request.user)

    def has_view_permission(self, request, obj=None):
        """Checked against the object too: simple-history shows stored versions of teams that
        ``get_queryset`` leaves out."""
        if not is_governance_staff(request):
            return False
        return obj is None or sees_all_assignments(request) or may_manage_roles(request, obj)

    def has_add_permission(self, request):
        """A new team concerns no team yet: superusers and security for all environments add it."""
        user = request.user
        return user.is_active and user.is_staff and (
            user.is_superuser or control_services.holds_scope(user, EVERYWHERE, at=timezone.now()))

    def has_change_permission(self, request, obj=None):
        """Superusers, security and the team's managers propose changes to the team and its members."""
        return may_manage_roles(request, obj) or super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        """Managers edit their team's members; the team itself is a control of administrators and
        security (RULES.md K1, K6)."""
        return [] if super().has_change_permission(request, obj) else self.fields

    def may_view_object_permissions(self, request, obj) -> bool:
        return sees_all_assignments(request) or may_manage_roles(request, obj)

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change)

    def save_formset(self, request, form, formset, change):
        """Stands in for the formset's own saving: each row goes through a membership service, and
        the outcome is recorded on the formset as Django would, for the admin's change log."""
        team = Team.objects.get(pk=form.instance.pk) if form.instance.pk else None
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if team is None:
            return
        for member_form in formset.deleted_forms:
            if member_form.instance.pk:
                services.membership_remove(actor=request.user, membership=member_form.instance)
                formset.deleted_objects.append(member_form.instance)
        for member_form in formset.forms:
            if member_form in formset.deleted_forms or not member_form.has_changed():
                continue
            membership = services.membership_set(
                actor=request.user,
                team=team,
                user=member_form.cleaned_data["user"],
                is_manager=member_form.cleaned_data.get("is_manager", False),
            )
            if member_form.instance.pk:
                formset.changed_objects.append((membership, member_form.changed_data))
            else:
                formset.new_objects.append(membership)


@admin.register(Environment)
class EnvironmentAdmin(ReadOnlyObjectPermissionsAdmin):
    control_kind = "governance.environment"
    list_display = ["name", "slug", "tier", "order", "time_zone"]
    list_filter = ["tier"]
    fields = ["name", "slug", "tier", "order", "time_zone"]

    def may_view_object_permissions(self, request, obj) -> bool:
        """Who holds duties on an environment spans every team: only those who see every
        assignment (V2) see this list."""
        return sees_all_assignments(request)
