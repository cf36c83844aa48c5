"""Controls in the admin (RULES.md section 8): every add, change and delete of a control is a call
to ``control_change``, and weakening ones wait under "Pending control changes" for a second person.

``ControlledAdmin`` is the base of every control's admin page: its form validates *by* calling the
service (a refusal becomes form errors with reason codes, and nothing is written), a weakening change
leaves the row as it was and says which proposal holds it, and Django's own saving steps do nothing.
"""
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from governance import duties
from core.admin import ServiceAddForm, ServiceOnlyAdmin, run_per_object
from governance.admin.duties import GovernanceAdmin, holds_duty, is_governance_staff
from governance.controls import registry, services
from governance.controls.registry import ACCOUNTS, DUTY
from core.errors import Refused
from governance.models import ControlChange


class ControlForm(ServiceAddForm):
    """An add or change form whose validation is ``control_change``. Only the fields the user
    changed are proposed (all of them when adding); an unchanged form calls nothing."""

    control_kind = ""

    def control_values(self, data) -> dict:
        kind = registry.get(self.control_kind)
        names = [n for n in kind.all_fields if n in self.fields]
        if self.instance.pk:
            names = [n for n in names if n in self.changed_data]
        return {name: data.get(name) for name in names}

    def perform(self, data):
        self.control_change = None
        if self.instance.pk and not self.has_changed():
            return self.instance
        kind = registry.get(self.control_kind)
        target = kind.model._default_manager.get(pk=self.instance.pk) if self.instance.pk else None
        self.control_change = services.control_change(
            actor=self.actor, kind=self.control_kind, target=target, values=self.control_values(data))
        change = self.control_change
        if change is not None and change.status == ControlChange.Status.APPLIED and change.target_id:
            return kind.model._default_manager.get(pk=change.target_id)
        return target if target is not None else self.instance


def _pending_link(change: ControlChange) -> str:
    url = reverse("admin:governance_controlchange_change", args=[change.pk])
    return format_html('<a href="{}">control change #{}</a>', url, change.pk)


class ControlledAdminMixin:
    """The admin of one kind of control. Subclasses name ``control_kind`` and their fields."""

    control_kind = ""
    form = ControlForm

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"control_kind": self.control_kind})

    def _may_propose_somewhere(self, request) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        kind = registry.get(self.control_kind)
        if kind.authority == ACCOUNTS:
            return False
        if kind.authority == DUTY:
            return holds_duty(request, duties.SECURITY_APPROVE) or holds_duty(request, duties.MANAGE_ROLES)
        return services.holds_scope(user, registry.EVERYWHERE, at=timezone.now())

    def has_add_permission(self, request):
        return self._may_propose_somewhere(request)

    def has_change_permission(self, request, obj=None):
        """Offered where the user may propose a change to this control (K6); the service decides."""
        if not self._may_propose_somewhere(request):
            return False
        if obj is None or obj.pk is None or request.user.is_superuser:
            return True
        kind = registry.get(self.control_kind)
        values = kind.snapshot(obj)
        return services.may_propose(request.user, kind, kind.scope(values, values), at=timezone.now())

    def has_delete_permission(self, request, obj=None):
        return False

    def save_form(self, request, form, change):
        return form.instance

    def save_model(self, request, obj, form, change):
        """``control_change`` wrote the row, or keeps the proposal, while the form validated."""
        proposal = getattr(form, "control_change", None)
        request._countersign_control_change = proposal
        if proposal is not None and proposal.status == ControlChange.Status.PENDING:
            reasons = "; ".join(w["message"] for w in proposal.weakening)
            self.message_user(request, format_html(
                "This change weakens the control ({}), so it waits for a second person: {}. Nothing changes until "
                "it is approved.", reasons, _pending_link(proposal)), messages.WARNING)

    def save_related(self, request, form, formsets, change):
        """``control_change`` wrote the related rows with the row."""

    def _held(self, request) -> bool:
        proposal = getattr(request, "_countersign_control_change", None)
        return proposal is not None and proposal.status == ControlChange.Status.PENDING

    def log_addition(self, request, obj, message):
        if not self._held(request):
            return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if not self._held(request):
            return super().log_change(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if self._held(request):
            return HttpResponseRedirect(reverse("admin:governance_controlchange_change",
                                                args=[request._countersign_control_change.pk]))
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if self._held(request):
            return HttpResponseRedirect(reverse("admin:governance_controlchange_change",
                                                args=[request._countersign_control_change.pk]))
        return super().response_change(request, obj)


class ControlledAdmin(ControlledAdminMixin, GovernanceAdmin):
    """A control with simple-history's history pages (read-only, never reverted)."""


class DeletableControlMixin:
    """A control whose deletion is a (weakening) control change: the admin's delete page proposes it."""

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def delete_model(self, request, obj):
        try:
            proposal = services.control_change(actor=request.user, kind=self.control_kind, target=obj,
                                               operation=ControlChange.Operation.DELETE)
        except Refused as refusal:
            raise PermissionDenied("; ".join(f"{r.code}: {r.message}" for r in refusal.reasons)) from refusal
        self.message_user(request, format_html(
            "Deleting it weakens the controls, so it waits for a second person: {}.", _pending_link(proposal)),
            messages.WARNING)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def log_deletion(self, request, obj, object_repr):
        """The deletion is only proposed; the proposal is on the chain."""

    def log_deletions(self, request, queryset):
        """As ``log_deletion``."""


# --- Pending control changes ------------------------------------------------------------------------


class CommentActionForm(helpers.ActionForm):
    comment = forms.CharField(required=False, label="Comment:")


@admin.register(ControlChange)
class ControlChangeAdmin(ServiceOnlyAdmin):
    """Every control change: applied at once, or waiting for a second person ("pending control
    changes"), with its values before and after. Decided here, one service call per proposal."""

    action_form = CommentActionForm
    actions = ["approve_selected", "reject_selected"]
    # Fits 1280 px (issue 18): the expiry and decision times are on the proposal's page.
    list_display = ["id", "target_repr", "operation", "status", "weakens", "proposed_by", "proposed_at", "decided_by"]
    list_display_links = ["id", "target_repr"]
    list_filter = ["status", "kind", "operation"]
    list_select_related = ["proposed_by", "decided_by"]
    search_fields = ["target_repr", "proposed_by__username"]
    fields = ["kind", "operation", "target_repr", "target_id", "status", "scope_text", "weakening_text", "changes_table",
              "proposed_by", "proposed_at", "expires_at", "decided_by", "decided_at", "applied_at", "comment"]
    readonly_fields = fields

    def may_read(self, request) -> bool:
        return is_governance_staff(request)

    def has_decide_permission(self, request):
        return request.user.is_active and request.user.is_staff

    @admin.display(description="Weakens", boolean=True)
    def weakens(self, change):
        return change.is_weakening

    @admin.display(description="Who decides")
    def scope_text(self, change):
        kind = registry.get(change.kind)
        return services._who_decides(kind, registry.Scope.from_dict(change.scope))

    @admin.display(description="Why it needs a second person")
    def weakening_text(self, change):
        return "; ".join(w["message"] for w in change.weakening) or "—"

    @admin.display(description="Values")
    def changes_table(self, change):
        before, after = change.before or {}, change.after or {}
        rows = format_html_join("", "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
                                ((name, before.get(name, "—"), after.get(name, "—")) for name in change.changed))
        return format_html('<table><thead><tr><th scope="col">field</th><th scope="col">before</th>'
                           '<th scope="col">after</th></tr></thead><tbody>{}</tbody></table>', rows)

    @admin.action(description="Approve selected proposals (you are the second person)", permissions=["decide"])
    def approve_selected(self, request, queryset):
        comment = request.POST.get("comment", "")
        run_per_object(self, request, queryset, "approved and applied",
                       lambda change: services.control_change_approve(actor=request.user, change=change, comment=comment))

    @admin.action(description="Reject (or withdraw your own) selected proposals", permissions=["decide"])
    def reject_selected(self, request, queryset):
        comment = request.POST.get("comment", "")
        run_per_object(self, request, queryset, "rejected",
                       lambda change: services.control_change_reject(actor=request.user, change=change, comment=comment))

