"""``/api/v1/control-changes/`` (API.md "Additions"): every control change, applied or pending, and
the four-eyes step for weakening ones (RULES.md K3). Who sees them: superusers, security, audit
viewers (every change) and managers (their teams' own); the proposer always sees their own."""
from django.db.models import Q
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import INVALID, StrictSerializer, validated, DetailSerializer, RefusalSerializer, UNAUTHENTICATED
from core.viewsets import VisibleObjectViewSet
from governance import selectors
from governance.controls import services
from governance.models import ControlChange


class ControlChangeSerializer(serializers.ModelSerializer):
    proposed_by = serializers.SlugRelatedField(read_only=True, allow_null=True, slug_field="username",
                                               help_text="Null for a change made by a command.")
    decided_by = serializers.SlugRelatedField(read_only=True, allow_null=True, slug_field="username")
    subject = serializers.SlugRelatedField(read_only=True, allow_null=True, slug_field="username",
                                           help_text="The account the change concerns, if any.")
    before = serializers.JSONField(allow_null=True, help_text="The control's values before; null for a creation.")
    after = serializers.JSONField(allow_null=True, help_text="The values it gets; null for a deletion.")
    changed = serializers.ListField(child=serializers.CharField())
    weakening = serializers.ListField(child=serializers.DictField(child=serializers.CharField()),
                                      help_text="Why a second person is needed: [{field, message}]; empty if none.")
    scope = serializers.JSONField(help_text="Whose duty decides: {environments, everywhere, team}.")

    class Meta:
        model = ControlChange
        fields = ["id", "kind", "operation", "target_id", "target_repr", "status", "scope", "subject", "before",
                  "after", "changed", "weakening", "proposed_by", "proposed_at", "expires_at", "decided_by",
                  "decided_at", "applied_at", "comment"]
        read_only_fields = fields
        extra_kwargs = {"expires_at": {"allow_null": True}, "decided_at": {"allow_null": True},
                        "applied_at": {"allow_null": True}}


class ControlDecisionSerializer(StrictSerializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


def control_changes_visible_to(user):
    if not user.is_authenticated:
        return ControlChange.objects.none()
    if selectors.sees_all_assignments(user):
        return ControlChange.objects.all()
    teams = list(selectors.teams_managed_by(user).values_list("slug", flat=True))
    return ControlChange.objects.filter(Q(proposed_by_id=user.pk) | Q(scope__team__in=teams))


NOT_FOUND = OpenApiResponse(DetailSerializer, description="Does not exist or is not visible to the caller.")
DENIED = OpenApiResponse(RefusalSerializer, description="Not allowed: `four_eyes_control`, `missing_duty`, …")
CONFLICT = OpenApiResponse(RefusalSerializer, description="Not pending, expired (`control_proposal_expired`) or "
                                                          "overtaken (`control_proposal_stale`).")


@extend_schema_view(
    list=extend_schema(responses={200: ControlChangeSerializer(many=True), 401: UNAUTHENTICATED}),
    retrieve=extend_schema(responses={200: ControlChangeSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND}),
)
@extend_schema(tags=["control-changes"])
class ControlChangeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, VisibleObjectViewSet):
    queryset = ControlChange.objects.none()  # for the schema; requests read through get_queryset
    serializer_class = ControlChangeSerializer

    def get_queryset(self):
        queryset = control_changes_visible_to(self.request.user).select_related("proposed_by", "decided_by", "subject")
        status = self.request.query_params.get("status")
        if status in ControlChange.Status.values:
            queryset = queryset.filter(status=status)
        return queryset.order_by("-proposed_at", "-id")

    def _decide(self, request, decide):
        data = validated(ControlDecisionSerializer, request.data)
        change = decide(actor=request.user, change=self.get_object(), comment=data["comment"])
        return Response(ControlChangeSerializer(change).data)

    @extend_schema(summary="Approve a pending control change: you are the second person (K3)",
                   request=ControlDecisionSerializer,
                   responses={200: ControlChangeSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: DENIED,
                              404: NOT_FOUND, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._decide(request, services.control_change_approve)

    @extend_schema(summary="Reject a pending control change, or withdraw your own", request=ControlDecisionSerializer,
                   responses={200: ControlChangeSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: DENIED,
                              404: NOT_FOUND, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._decide(request, services.control_change_reject)

