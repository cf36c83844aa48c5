"""The releases admin: a client of ``releases.services`` (STYLE.md point 6).

Nothing here writes a governed model. Approval policies, freeze windows and standard-change templates
are controls, changed through ``governance.controls`` while the form validates (a refusal becomes form
errors and nothing is written; a weakening change waits for a second person). Change
requests, their approvals and deployments are read-only records here: their lifecycle belongs to the
portal and the API, and the one verb offered (cancel) calls ``change_request_cancel``. Who sees what
follows RULES.md V1 and V4: the change lists come from ``releases.selectors``; superusers see
everything and are refused by the services like anyone else.
"""
from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.shortcuts import get_object_or_404

from governance import duties
from core.admin import ServiceOnlyHistoryAdmin, run_per_object
from core.memo import per_request
from governance.admin.duties import holds_duty
from governance.controls.admin import ControlledAdmin
from governance.models import Membership
from releases import selectors, services
from releases.models import (
    Approval,
    ApprovalPolicy,
    ChangeRequest,
    Deployment,
    FreezeWindow,
    RevisionContributor,
    StandardChangeTemplate,
)

# --- Who may do what: duties held now, read once per request ---------------------------------------


def _sees_changes(request) -> bool:
    """Staff with business here (V1, V4): superusers and view_audit holders see every change, team
    members their teams' changes (a duty is held in a team, so every duty holder is a member)."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    if user.is_superuser or holds_duty(request, duties.VIEW_AUDIT):
        return True
    return per_request(request, "is_member", lambda: Membership.objects.filter(user_id=user.pk).exists())


class ReleaseControlAdmin(ControlledAdmin):
    """Approval policies and freeze windows are controls (RULES.md section 8): seen by staff who see
    changes, proposed by superusers and security, changed only through ``control_change`` (weakening
    changes wait for a second person with security_approve for the environments concerned), never
    deleted (a freeze window is ended by moving its end, which is itself a proposal)."""

    def may_read(self, request) -> bool:
        return _sees_changes(request)

    def _may_propose_somewhere(self, request) -> bool:
        user = request.user
        return user.is_active and user.is_staff and (user.is_superuser or holds_duty(request, duties.SECURITY_APPROVE))


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(ReleaseControlAdmin):
    control_kind = "releases.approvalpolicy"
    list_display = [
        "environment", "min_approvals", "min_security_approvals", "high_risk_security_approvals",
        "team_reviewer_required", "approval_ttl_hours", "require_prior_environment", "require_interactive_signoff",
    ]
    list_select_related = ["environment", "require_prior_environment"]
    fieldsets = [
        (None, {"fields": ["environment"]}),
        ("Approvals", {"fields": [
            "min_approvals", "min_security_approvals", "high_risk_security_approvals", "team_reviewer_required",
            "approval_ttl_hours", "allow_auto_approve_standard", "require_interactive_signoff", "review_sla_minutes",
        ]}),
        ("Deploying", {"fields": [
            "require_prior_environment", "deploy_weekdays", "deploy_window_start", "deploy_window_end",
        ]}),
        ("Emergency changes", {"fields": ["emergency_min_approvals", "pir_due_hours"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # A policy belongs to its environment for good; another environment gets its own policy.
        return ["environment"] if obj is not None else []


@admin.register(FreezeWindow)
class FreezeWindowAdmin(ReleaseControlAdmin):
    control_kind = "releases.freezewindow"
    list_display = ["name", "environment_list", "starts_at", "ends_at", "created_by"]
    list_select_related = ["created_by"]
    list_filter = ["environments"]
    search_fields = ["name", "reason"]
    fields = ["name", "environments", "starts_at", "ends_at", "reason", "created_by"]
    readonly_fields = ["created_by"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("environments")

    @admin.display(description="Environments")
    def environment_list(self, obj):
        return ", ".join(sorted(environment.slug for environment in obj.environments.all()))


@admin.register(StandardChangeTemplate)
class StandardChangeTemplateAdmin(ReleaseControlAdmin):
    """The catalogue of standard changes (C9): a control whose every new entry lowers the bar, so it
    waits for a second person (RULES.md K3); never deleted, a template is retired by switching it off."""

    control_kind = "releases.standardchangetemplate"
    list_display = ["name", "environment", "max_risk", "artifact_pattern", "expires_at", "active", "created_by"]
    list_select_related = ["environment", "created_by"]
    list_filter = ["active", ("environment", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "artifact_pattern"]
    fields = ["name", "description", "environment", "max_risk", "artifact_pattern", "expires_at", "active",
              "created_by"]
    readonly_fields = ["created_by"]


# --- Change requests, approvals, deployments: read-only records ------------------------------------


class ReadOnlyRecordAdmin(ServiceOnlyHistoryAdmin):
    """Every field read-only, nothing added, changed or deleted here. Every page of one record reads
    it through ``get_queryset`` (the V1 selector), so a record out of the viewer's scope is missing,
    not forbidden."""

    visible_to = None  # the selector of the records ``user`` may see

    def get_queryset(self, request):
        queryset = self.visible_to(request.user)
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def may_read(self, request) -> bool:
        return _sees_changes(request)

    def get_readonly_fields(self, request, obj=None):
        return flatten_fieldsets(self.get_fieldsets(request, obj))

    def history_view(self, request, object_id, extra_context=None):
        # simple-history falls back to the stored versions of an object ``get_queryset`` omits.
        get_object_or_404(self.get_queryset(request), pk=unquote(object_id))
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        get_object_or_404(self.get_queryset(request), pk=unquote(object_id))
        return super().history_form_view(request, object_id, version_id, extra_context)


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on a change request's page, which the parent admin has already found visible."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_view_permission(self, request, obj=None):
        return _sees_changes(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ApprovalInline(ReadOnlyInline):
    model = Approval
    fields = ["reviewer", "decision", "revision", "artifact", "via", "is_security", "is_team_member", "is_on_call",
              "stale", "created_at", "comment"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("reviewer")


class ContributorHistoryInline(ReadOnlyInline):
    """Who each revision listed as a contributor: everyone here stays barred from deciding it."""

    model = RevisionContributor
    fields = ["revision", "user", "listed_at"]
    verbose_name = "contributor of a revision"
    verbose_name_plural = "contributors, revision by revision"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


class DeploymentInline(ReadOnlyInline):
    model = Deployment
    fields = ["state", "artifact", "revision", "deployer", "started_at", "finished_at", "rolled_back_at"]
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("deployer")


class CancelReasonForm(helpers.ActionForm):
    """The changelist's action bar, with the reason ``change_request_cancel`` requires."""

    reason = forms.CharField(required=False, label="Reason (for cancel):")


@admin.register(ChangeRequest)
class ChangeRequestAdmin(ReadOnlyRecordAdmin):
    inlines = [ApprovalInline, ContributorHistoryInline, DeploymentInline]
    action_form = CancelReasonForm
    actions = ["cancel_selected"]
    # Fits 1280 px (issue 18): the revision is on the change's page.
    list_display = ["id", "title", "team", "environment", "change_type", "risk", "state", "author", "created_at"]
    list_display_links = ["id", "title"]
    list_select_related = ["team", "environment", "author"]
    list_filter = [
        "state",
        ("environment", admin.RelatedOnlyFieldListFilter),
        ("team", admin.RelatedOnlyFieldListFilter),
        "change_type",
        "risk",
    ]
    search_fields = ["title", "artifact", "author__username"]
    visible_to = staticmethod(selectors.change_requests_visible_to)
    fieldsets = [
        (None, {"fields": ["title", "description", "team", "environment", "change_type", "risk", "emergency_reason",
                           "ticket_url"]}),
        ("Revision", {"fields": ["artifact", "revision", "author", "contributors"]}),
        ("Lifecycle", {"fields": ["state", "created_at", "submitted_at", "approved_at", "deployed_at", "closed_at",
                                  "close_reason"]}),
        ("Post-implementation review", {"fields": ["pir_due_at", "pir_by", "pir_at", "pir_notes"]}),
    ]

    def has_cancel_permission(self, request):
        """Offered to those ``change_request_cancel`` might allow (authors hold submit, team managers
        manage_roles) and to superusers, whom it refuses like anyone else; it decides each change."""
        return request.user.is_superuser or holds_duty(request, duties.SUBMIT) or holds_duty(request, duties.MANAGE_ROLES)

    @admin.action(description="Cancel selected change requests (give a reason)", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        reason = request.POST.get("reason", "")
        run_per_object(
            self, request, queryset, "cancelled",
            lambda change: services.change_request_cancel(actor=request.user, change_request=change, reason=reason),
        )


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyRecordAdmin):
    # Fits 1280 px (issue 18): the change request names its environment; the revision is on the page.
    list_display = ["id", "change_request", "artifact", "state", "deployer", "started_at", "finished_at"]
    list_select_related = ["change_request", "environment", "deployer"]
    list_filter = ["state", ("environment", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["artifact", "change_request__title", "deployer__username"]
    visible_to = staticmethod(selectors.deployments_visible_to)
    fields = ["change_request", "environment", "artifact", "revision", "deployer", "state", "pipeline_url",
              "started_at", "finished_at", "notes", "rolled_back_at", "rollback_reason"]
