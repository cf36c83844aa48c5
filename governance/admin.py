"""The managers' admin: a client of ``governance.services`` (STYLE.md point 6).

Nothing here writes a governed model. Add forms validate *by* calling the service, so a refusal
becomes form errors carrying the service's reason codes and nothing is written; changes, memberships
and lifecycle verbs (approve, reject, revoke) call one service each. Who sees and may do what is
derived from duties held through role assignments (RULES.md V2, V4), never from Django's model
permissions, and superusers act through the same services as everyone (no SoD bypass).
"""
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from guardian.admin import GuardedModelAdmin
from guardian.shortcuts import get_groups_with_perms, get_perms_for_model, get_users_with_perms

from governance import duties, review_visibility, selectors, services
from governance.admin_toolkit import (
    OfferedModelChoiceField,
    ReasonActionForm,
    ServiceAddForm,
    ServiceOnlyAdmin,
    held_duties,
    holds_duty,
    is_governance_staff,
    is_security,
    may_manage_roles,
    per_request,
    run_per_object,
    sees_all_assignments,
)
from governance.controls import services as control_services
from governance.controls.admin import ControlForm, ControlledAdmin
from governance.controls.registry import EVERYWHERE
from governance.errors import Denied, Reason
from governance.models import (
    AccessReview,
    AccessReviewItem,
    ApiToken,
    ConflictRule,
    Environment,
    Membership,
    Role,
    RoleAssignment,
    SoDException,
    Team,
)
from governance.tasks import current_quarter

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
class RoleAssignmentAdmin(ServiceOnlyAdmin):
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

    def get_queryset(self, request):
        queryset = self.visible(request).all()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def has_view_permission(self, request, obj=None):
        if not is_governance_staff(request):
            return False
        return obj is None or self.visible(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request):
        return may_manage_roles(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request):
        """Approve, reject and revoke are offered to those the services might allow (G4, G5);
        the services decide each grant."""
        return may_manage_roles(request) or is_security(request)

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.detail_fields

    def get_readonly_fields(self, request, obj=None):
        # Also read-only on simple-history's page of a past version, which builds its own form.
        return [] if obj is None else self.detail_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

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
class SoDExceptionAdmin(ServiceOnlyAdmin):
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

    def get_queryset(self, request):
        queryset = self.visible(request).all()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def has_view_permission(self, request, obj=None):
        if not is_governance_staff(request):
            return False
        return obj is None or self.visible(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request):
        return may_manage_roles(request) or is_security(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request):
        return request.user.is_superuser or is_security(request)

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.detail_fields

    def get_readonly_fields(self, request, obj=None):
        # Also read-only on simple-history's page of a past version, which builds its own form.
        return [] if obj is None else self.detail_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

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


# --- API tokens ------------------------------------------------------------------------------------


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
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

    def has_module_permission(self, request):
        return is_governance_staff(request)

    def has_view_permission(self, request, obj=None):
        return is_governance_staff(request) and (
            obj is None or request.user.is_superuser or obj.user_id == request.user.pk
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Key hash")
    def key_hash_hint(self, obj):
        return f"{obj.key_hash[:8]}…"

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request, queryset):
        run_per_object(
            self, request, queryset, "revoked", lambda token: services.api_token_revoke(actor=request.user, token=token)
        )


# --- Access reviews (A1–A3) ------------------------------------------------------------------------


class AccessReviewStartForm(ServiceAddForm):
    """"Start access review now": the add form runs ``access_review_start``, which resumes the
    period's campaign if one exists rather than creating a second."""

    due_days = forms.IntegerField(
        min_value=1, max_value=365, initial=14, label="Days to decide", help_text="Reviewers' deadline, from today."
    )

    class Meta:
        model = AccessReview
        fields = ["period", "team", "undecided_policy"]
        help_texts = {"team": "Empty reviews every team's grants."}

    def perform(self, data):
        self.existed = AccessReview.objects.filter(period=data["period"], team=data.get("team")).exists()
        return services.access_review_start(
            actor=self.actor, period=data["period"], team=data.get("team"), due_days=data["due_days"],
            undecided_policy=data["undecided_policy"],
        )


def _may_start_reviews(request) -> bool:
    """Mirrors ``access_review_start``'s check, for offering the button; the service decides."""
    return request.user.is_superuser or is_security(request) or holds_duty(request, duties.REVIEW_ACCESS)


def _visible_review_items(request):
    return per_request(
        request, "visible_review_items", lambda: review_visibility.review_items_visible_to(request.user)
    )


def _refuse_close(request, review: AccessReview) -> None:
    """``access_review_close`` takes any actor, so the admin applies the starting rule to closing:
    a superuser, security, or review_access in the campaign's team (every-team campaigns: the
    first two only)."""
    if request.user.is_superuser or is_security(request):
        return
    if review.team_id is not None and holds_duty(request, duties.REVIEW_ACCESS, team=review.team):
        return
    raise Denied(Reason("missing_duty", "Closing a campaign needs review_access in its team or security_approve."))


@admin.register(AccessReview)
class AccessReviewAdmin(ServiceOnlyAdmin):
    form = AccessReviewStartForm
    actions = ["close_selected"]
    list_display = [
        "name", "period", "team_or_all", "status", "undecided_policy", "due_at", "items_count", "undecided_count",
        "closed_at",
    ]
    list_display_links = ["name"]
    list_select_related = ["team"]
    list_filter = ["status", ("team", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "period"]
    add_fields = ["period", "team", "undecided_policy", "due_days"]
    detail_fields = [
        "name", "period", "team", "status", "undecided_policy", "started_by", "created_at", "due_at", "closed_at",
        "items_count", "undecided_count", "items_link",
    ]

    def visible(self, request):
        return per_request(
            request, "visible_reviews", lambda: review_visibility.access_reviews_visible_to(request.user)
        )

    def visible_items(self, request):
        return _visible_review_items(request)

    def get_queryset(self, request):
        queryset = review_visibility.with_item_counts(self.visible(request).all(), self.visible_items(request))
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def has_view_permission(self, request, obj=None):
        if not is_governance_staff(request):
            return False
        return obj is None or self.visible(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_staff and _may_start_reviews(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_close_permission(self, request):
        return _may_start_reviews(request)

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.detail_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.detail_fields

    def get_changeform_initial_data(self, request):
        return {"period": current_quarter(), **super().get_changeform_initial_data(request)}

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, {"title": "Start access review now", **(extra_context or {})})

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "team" and not (request.user.is_superuser or is_security(request)):
            kwargs["queryset"] = Team.objects.filter(
                pk__in=[team_id for duty, _, team_id in held_duties(request) if duty == duties.REVIEW_ACCESS]
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Team")
    def team_or_all(self, review):
        return review.team.name if review.team_id else "every team"

    @admin.display(description="Items")
    def items_count(self, review):
        return getattr(review, "items_count", None)

    @admin.display(description="Undecided")
    def undecided_count(self, review):
        return getattr(review, "undecided_count", None)

    @admin.display(description="Items to decide")
    def items_link(self, review):
        url = reverse("admin:governance_accessreviewitem_changelist")
        return format_html('<a href="{}?review__id__exact={}">Review the items of this campaign</a>', url, review.pk)

    def save_form(self, request, form, change):
        return form.instance

    def save_model(self, request, obj, form, change):
        """``access_review_start`` built the campaign while validating the form."""
        if getattr(form, "existed", False):
            self.message_user(
                request, f"{obj} already existed for this period; nothing new was started.", messages.WARNING
            )
        else:
            self.message_user(request, f"{obj} is {obj.get_status_display().lower()} with {obj.items.count()} items.",
                              messages.SUCCESS)

    def save_related(self, request, form, formsets, change):
        """The service wrote the items with the campaign."""

    def response_add(self, request, obj, post_url_continue=None):
        """To the campaign's page, without Django's "added" message: ``save_model`` said whether the
        campaign was started or already there."""
        return HttpResponseRedirect(reverse("admin:governance_accessreview_change", args=[obj.pk]))

    @admin.action(description="Close selected campaigns (undecided items follow each campaign's policy)",
                  permissions=["close"])
    def close_selected(self, request, queryset):
        def close(review):
            _refuse_close(request, review)
            services.access_review_close(actor=request.user, review=review)

        run_per_object(self, request, queryset, "closed", close)


class DecisionFilter(admin.SimpleListFilter):
    title = "decision"
    parameter_name = "decision"

    def lookups(self, request, model_admin):
        return [("undecided", "Undecided"), *AccessReviewItem.Decision.choices]

    def queryset(self, request, queryset):
        if self.value() == "undecided":
            return queryset.filter(decision="")
        if self.value() in AccessReviewItem.Decision.values:
            return queryset.filter(decision=self.value())
        return queryset


class CommentActionForm(helpers.ActionForm):
    """The changelist's action bar, with the comment that revoking needs."""

    comment = forms.CharField(required=False, label="Comment (required to revoke):")


@admin.register(AccessReviewItem)
class AccessReviewItemAdmin(ServiceOnlyAdmin):
    """Items are written by the campaign; here they are read and decided, each through
    ``access_review_item_decide`` (which refuses self-review and outsiders)."""

    action_form = CommentActionForm
    actions = ["keep_selected", "revoke_selected"]
    list_display = [
        "id", "review", "grantee", "role", "team", "environment", "reviewer", "due_at", "recommendation_codes",
        "decision", "decided_by", "decided_at",
    ]
    list_display_links = ["id"]
    list_select_related = [
        "review", "assignment__user", "assignment__role", "assignment__team", "assignment__environment", "reviewer",
        "decided_by",
    ]
    list_filter = [DecisionFilter, "reviewer_is_security", ("review", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["assignment__user__username"]
    fields = [
        "review", "assignment", "reviewer", "reviewer_is_security", "due_at", "recommendation_list", "decision",
        "decided_by", "decided_at", "comment", "reminded_at", "escalated_at",
    ]
    readonly_fields = fields

    def visible(self, request):
        return _visible_review_items(request)

    def get_queryset(self, request):
        queryset = self.visible(request).all()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def has_view_permission(self, request, obj=None):
        if not is_governance_staff(request):
            return False
        return obj is None or self.visible(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request):
        """Offered to managers and security; the service decides each item."""
        return may_manage_roles(request) or is_security(request)

    @admin.display(description="Grantee", ordering="assignment__user__username")
    def grantee(self, item):
        return item.assignment.user.username

    @admin.display(description="Role")
    def role(self, item):
        return item.assignment.role.name

    @admin.display(description="Team")
    def team(self, item):
        return item.assignment.team.name

    @admin.display(description="Environment")
    def environment(self, item):
        grant = item.assignment
        if not grant.role.takes_environment:
            return "—"
        return grant.environment.name if grant.environment_id else "all"

    @admin.display(description="Recommendations")
    def recommendation_codes(self, item):
        return ", ".join(r.get("code", "") for r in item.recommendations) or "—"

    @admin.display(description="Recommendations")
    def recommendation_list(self, item):
        return "; ".join(f"{r.get('code', '')}: {r.get('message', '')}" for r in item.recommendations) or "—"

    @admin.action(description="Keep selected grants", permissions=["decide"])
    def keep_selected(self, request, queryset):
        comment = request.POST.get("comment", "")
        run_per_object(
            self, request, queryset, "kept",
            lambda item: services.access_review_item_decide(actor=request.user, item=item, decision="keep",
                                                            comment=comment),
        )

    @admin.action(description="Revoke selected grants (with comment)", permissions=["decide"])
    def revoke_selected(self, request, queryset):
        comment = request.POST.get("comment", "")
        run_per_object(
            self, request, queryset, "revoked",
            lambda item: services.access_review_item_decide(actor=request.user, item=item, decision="revoke",
                                                            comment=comment),
        )


# Accounts, notification channels and scheduled tasks register their admin pages in their own modules.
from governance import accounts_admin as _accounts_admin  # noqa: E402,F401
from governance.controls import alerting_admin as _alerting_admin  # noqa: E402,F401
