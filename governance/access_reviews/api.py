"""Access-review endpoints (API.md, RULES.md A1–A3): campaigns and their items, read through
``governance.access_reviews.visibility`` (what the caller may not see is a 404), and one verb, ``decide``,
that calls ``services.access_review_item_decide``, which refuses with 403 (``self_review``,
``missing_duty``) or 409 (decided, or the campaign is closed).

This module is also the URLconf of these routes (``urlpatterns`` at the end), mounted under
``/api/v1/`` by ``config/urls.py``.
"""
import django_filters
from django.db.models import Prefetch
from django.urls import include, path
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from core.api import validated, DetailSerializer, FIELD_ERRORS, RefusalSerializer, UNAUTHENTICATED
from core.viewsets import VisibleObjectViewSet
from governance.access_reviews import services, visibility
from governance.access_reviews.serializers import (
    AccessReviewDetailSerializer,
    AccessReviewItemDecideSerializer,
    AccessReviewItemSerializer,
    AccessReviewSerializer,
)
from governance.api.filters import IdFilter
from governance.models import AccessReview, AccessReviewItem

NOT_FOUND = OpenApiResponse(DetailSerializer, description="Does not exist or is not visible to the caller.")
INVALID = OpenApiResponse(
    FIELD_ERRORS,
    description="Field errors: `{field: [message, …]}`.",
)
DENIED = OpenApiResponse(
    RefusalSerializer,
    description="Not allowed: `self_review` (nobody reviews their own access) or `missing_duty` (only the item's "
    "reviewer, a manager of the grant's team, or security for items assigned to security decide).",
)
CONFLICT = OpenApiResponse(
    RefusalSerializer, description="The item is already decided or its campaign is not open (`invalid_state`)."
)
ITEM_RELATIONS = [
    "assignment__user", "assignment__role", "assignment__team", "assignment__environment", "reviewer", "decided_by",
]


class AccessReviewFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=AccessReview.Status.choices)
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug (campaigns over one team).")
    period = django_filters.CharFilter(help_text="The period a campaign covers, e.g. 2026-Q4.")

    class Meta:
        model = AccessReview
        fields = ["status", "team", "period"]


UNDECIDED = "undecided"
AWAITING_ME = (
    "true: undecided items of open campaigns the caller may decide (their reviewer, a manager of the grant's "
    "team, or security for items assigned to security), never the caller's own grants; false: all others."
)


class AccessReviewItemFilter(django_filters.FilterSet):
    review = IdFilter(field_name="review_id", help_text="Campaign id.")
    team = django_filters.CharFilter(field_name="assignment__team__slug", help_text="Slug of the grant's team.")
    user = django_filters.CharFilter(field_name="assignment__user__username", help_text="Grantee's username.")
    reviewer = django_filters.CharFilter(field_name="reviewer__username", help_text="Reviewer's username.")
    decision = django_filters.ChoiceFilter(
        choices=[*AccessReviewItem.Decision.choices, (UNDECIDED, "Undecided")], method="filter_decision",
        help_text="keep, revoke, or undecided.",
    )
    # Strictly true or false: a value the filter ignored would hand a script every item instead of its queue.
    awaiting_me = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")], coerce=lambda value: value == "true",
        method="filter_awaiting_me", help_text=AWAITING_ME,
    )

    class Meta:
        model = AccessReviewItem
        fields = ["review", "team", "user", "reviewer", "decision", "awaiting_me"]

    def filter_decision(self, queryset, name, value):
        return queryset.filter(decision="" if value == UNDECIDED else value)

    @extend_schema_field({"type": "boolean", "description": AWAITING_ME})
    def filter_awaiting_me(self, queryset, name, value):
        awaiting = visibility.review_items_awaiting(self.request.user).values("pk")
        return queryset.filter(pk__in=awaiting) if value else queryset.exclude(pk__in=awaiting)


@extend_schema_view(
    list=extend_schema(
        description="Campaigns visible to the caller: their teams' campaigns (and every-team campaigns) for holders "
        "of manage_roles or review_access, campaigns with an item they review, all of them for security and audit "
        "viewers. Counts cover the items the caller sees; `GET /access-reviews/{id}/` lists them.",
        responses={200: AccessReviewSerializer(many=True), 400: INVALID, 401: UNAUTHENTICATED},
    ),
    retrieve=extend_schema(
        description="The campaign with the items the caller sees: a team manager sees their teams' items of an "
        "every-team campaign, a reviewer their own items.",
        responses={200: AccessReviewDetailSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND},
    ),
)
@extend_schema(tags=["access-reviews"])
class AccessReviewViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, VisibleObjectViewSet):
    # Only for the schema's introspection; every request reads through get_queryset.
    queryset = AccessReview.objects.none()
    serializer_class = AccessReviewSerializer
    filterset_class = AccessReviewFilter

    def get_serializer_class(self):
        return AccessReviewDetailSerializer if self.action == "retrieve" else AccessReviewSerializer

    def get_queryset(self):
        user, at = self.request.user, timezone.now()
        items = visibility.review_items_visible_to(user, at=at)
        reviews = visibility.with_item_counts(
            visibility.access_reviews_visible_to(user, at=at), items
        ).select_related("team", "started_by")
        if self.action == "retrieve":
            reviews = reviews.prefetch_related(
                Prefetch("items", items.select_related(*ITEM_RELATIONS).order_by("pk"), to_attr="visible_items")
            )
        return reviews.order_by("-created_at", "-pk")


@extend_schema_view(
    list=extend_schema(
        description="Review items visible to the caller, across campaigns; `awaiting_me=true` is the caller's queue.",
        responses={200: AccessReviewItemSerializer(many=True), 400: INVALID, 401: UNAUTHENTICATED},
    ),
    retrieve=extend_schema(responses={200: AccessReviewItemSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND}),
)
@extend_schema(tags=["access-reviews"])
class AccessReviewItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, VisibleObjectViewSet):
    queryset = AccessReviewItem.objects.none()
    serializer_class = AccessReviewItemSerializer
    filterset_class = AccessReviewItemFilter

    def get_queryset(self):
        return (
            visibility.review_items_visible_to(self.request.user)
            .select_related(*ITEM_RELATIONS)
            .order_by("pk")
        )

    @extend_schema(
        summary="Keep or revoke the grant under review (A3)",
        description="`revoke` needs a comment and revokes the grant at once through the grant service (G5).",
        request=AccessReviewItemDecideSerializer,
        responses={
            200: AccessReviewItemSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: DENIED, 404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        item = self.get_object()
        data = validated(AccessReviewItemDecideSerializer, request.data)
        services.access_review_item_decide(actor=request.user, item=item, **data)
        decided = AccessReviewItem.objects.select_related(*ITEM_RELATIONS).get(pk=item.pk)
        return Response(AccessReviewItemSerializer(decided).data)


# SimpleRouter: governance's DefaultRouter already serves the API root at the same prefix.
router = SimpleRouter()
router.register("access-reviews", AccessReviewViewSet, basename="access-review")
router.register("access-review-items", AccessReviewItemViewSet, basename="access-review-item")

urlpatterns = [path("", include(router.urls))]
