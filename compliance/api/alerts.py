"""Alert endpoints (API.md, RULES.md V3 and E2). Alerts are read by holders of ``view_audit`` or
``security_approve``; anyone else is told so on the list (403 ``missing_duty``) and gets 404 for a
single alert, as for anything they may not see. Resolving needs ``security_approve`` and calls
``compliance.alerts.alert_resolve``, which refuses 400 (blank resolution) and 409 (already resolved).
"""
import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from compliance import alerts as services
from compliance.api.serializers import AlertResolveSerializer, AlertSerializer
from audit.models import Alert
from core.api import FIELD_ERRORS, UNAUTHENTICATED, DetailSerializer, RefusalSerializer, validated
from core.viewsets import VisibleObjectViewSet
from core.memo import per_request
from governance import duties
from governance.selectors import has_duty

NOT_FOUND = OpenApiResponse(DetailSerializer, description="Does not exist, or the caller may not read alerts.")
INVALID = OpenApiResponse(
    FIELD_ERRORS,
    description="Field errors: `{field: [message, …]}`.",
)
MAY_NOT_READ = OpenApiResponse(
    RefusalSerializer, description="`missing_duty`: reading alerts needs view_audit or security_approve."
)
MAY_NOT_RESOLVE = OpenApiResponse(RefusalSerializer, description="`missing_duty`: resolving an alert needs security_approve.")
CONFLICT = OpenApiResponse(RefusalSerializer, description="The alert is already resolved (`invalid_state`).")


def _alert_duties(request) -> dict[str, bool]:
    """What the caller may do with alerts, asked once per request."""
    def read():
        user = request.user
        security = has_duty(user, duties.SECURITY_APPROVE)
        return {"read": user.is_superuser or security or has_duty(user, duties.VIEW_AUDIT), "resolve": security}

    return per_request(request, "alert_duties", read)


class AlertFilter(django_filters.FilterSet):
    kind = django_filters.CharFilter(help_text="Detector code, e.g. rubber_stamp, permission_drift.")
    severity = django_filters.ChoiceFilter(choices=Alert.Severity.choices)
    status = django_filters.ChoiceFilter(choices=Alert.Status.choices)

    class Meta:
        model = Alert
        fields = ["kind", "severity", "status"]


@extend_schema_view(
    list=extend_schema(
        description="Alerts, newest first. Needs view_audit or security_approve: anyone else gets 403 "
        "`missing_duty` rather than an empty list, so a misconfigured script notices.",
        responses={200: AlertSerializer(many=True), 400: INVALID, 401: UNAUTHENTICATED, 403: MAY_NOT_READ},
    ),
    retrieve=extend_schema(responses={200: AlertSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND}),
)
@extend_schema(tags=["alerts"])
class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, VisibleObjectViewSet):
    # Only for the schema's introspection; every request reads through get_queryset.
    queryset = Alert.objects.none()
    serializer_class = AlertSerializer
    filterset_class = AlertFilter

    def get_queryset(self):
        if not _alert_duties(self.request)["read"]:
            return Alert.objects.none()
        return Alert.objects.select_related("actor", "resolved_by").order_by("-created_at", "-pk")

    def authorise(self, request) -> None:
        if self.action == "list" and not _alert_duties(request)["read"]:
            raise PermissionDenied("Reading alerts needs view_audit or security_approve.")

    def authorise_object(self, request, obj) -> None:
        if self.action == "resolve" and not _alert_duties(request)["resolve"]:
            raise PermissionDenied("Resolving an alert needs security_approve.")

    @extend_schema(
        summary="Resolve an alert with what was found (security)",
        request=AlertResolveSerializer,
        responses={
            200: AlertSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: MAY_NOT_RESOLVE, 404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        alert = self.get_object()
        resolved = services.alert_resolve(actor=request.user, alert=alert, **validated(AlertResolveSerializer, request.data))
        return Response(AlertSerializer(resolved).data)
