"""Access reviews in the admin (A1–A3): start a campaign, close it, decide its items; one service
call per object."""
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from governance import duties, services
from governance.access_reviews import visibility
from core.admin import ServiceAddForm, run_per_object
from core.memo import per_request
from governance.admin.duties import GovernanceAdmin, held_duties, holds_duty, is_security, may_manage_roles
from core.errors import Denied, Reason
from governance.models import (
    AccessReview,
    AccessReviewItem,
    Team,
)
from governance.tasks import current_quarter

User = get_user_model()


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
        request, "visible_review_items", lambda: visibility.review_items_visible_to(request.user)
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
class AccessReviewAdmin(GovernanceAdmin):
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
            request, "visible_reviews", lambda: visibility.access_reviews_visible_to(request.user)
        )

    def visible_items(self, request):
        return _visible_review_items(request)

    def get_queryset(self, request):
        queryset = visibility.with_item_counts(self.visible(request).all(), self.visible_items(request))
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_staff and _may_start_reviews(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_close_permission(self, request):
        return _may_start_reviews(request)

    def get_changeform_initial_data(self, request):
        return {"period": current_quarter(), **super().get_changeform_initial_data(request)}

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, {"title": "Start access review now", **(extra_context or {})})

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
class AccessReviewItemAdmin(GovernanceAdmin):
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
