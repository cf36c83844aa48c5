"""``GET deployment-reconciliation/?since=&until=&environment=`` (issue 16, item 5): the
production deployments the platforms and deploy tools reported, each with the change request it
was matched to or its exceptions: the rows of the SOX bundle's ``deployment_reconciliation``
dataset, asked of the same rule (``integrations.reconciliation``). Read by holders of
``view_audit`` or ``export_evidence`` (compliance) and superusers; anyone else gets 403."""
from datetime import timezone as dt_timezone

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.exceptions import PermissionDenied

from core.api import INVALID, UNAUTHENTICATED, RefusalSerializer, StrictSerializer, validated
from core.memo import per_request
from core.viewsets import VisibleObjectViewSet
from governance import duties
from governance.selectors import has_duty
from integrations import reconciliation
from integrations.models import ReportedDeployment

MAY_NOT_READ = OpenApiResponse(
    RefusalSerializer, description="`missing_duty`: the reconciliation needs view_audit or export_evidence.")


def may_read(request) -> bool:
    user = request.user
    return per_request(request, "reads_reconciliation", lambda: user.is_active and (
        user.is_superuser or has_duty(user, duties.VIEW_AUDIT) or has_duty(user, duties.EXPORT_EVIDENCE)))


class UtcDateTimeField(serializers.DateTimeField):
    """An instant, in UTC; one with no UTC value (year 1 with a positive offset) is a 400."""

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        try:
            return parsed.astimezone(dt_timezone.utc)
        except OverflowError:
            self.fail("invalid", format="ISO 8601")


class ReconciliationQuerySerializer(StrictSerializer):
    since = UtcDateTimeField(required=False, help_text="Reported at or after (ISO 8601).")
    until = UtcDateTimeField(required=False, help_text="Reported before (ISO 8601).")
    environment = serializers.SlugField(required=False, max_length=64, help_text="Countersign environment slug.")
    limit = serializers.IntegerField(required=False, min_value=1)
    offset = serializers.IntegerField(required=False, min_value=0)

    def validate(self, data):
        if "since" in data and "until" in data and data["until"] < data["since"]:
            raise serializers.ValidationError({"until": ["Must not be before since."]})
        return data


class ReconciliationRowSerializer(serializers.Serializer):
    reported_deployment_id = serializers.IntegerField()
    source = serializers.ChoiceField(choices=ReportedDeployment.Source.values)
    repository = serializers.CharField()
    external_id = serializers.CharField()
    platform_environment = serializers.CharField()
    environment = serializers.CharField()
    environment_tier = serializers.CharField()
    commit_sha = serializers.CharField()
    artifact = serializers.CharField()
    status = serializers.CharField()
    deployer = serializers.CharField()
    url = serializers.CharField()
    reported_at = serializers.CharField()
    status_at = serializers.CharField()
    change_id = serializers.CharField(help_text="CR-<id>, or empty when nothing matched.")
    change_state = serializers.CharField()
    change_approved_at = serializers.CharField(allow_null=True)
    countersigned_by = serializers.CharField()
    result = serializers.ChoiceField(choices=["matched", "exception", "did_not_run"])
    findings = serializers.ListField(child=serializers.ChoiceField(choices=reconciliation.EXCEPTIONS))

    def to_representation(self, instance):
        return instance  # rows are built by integrations.reconciliation, already plain


@extend_schema_view(list=extend_schema(
    summary="Reconcile the production deployments the platforms reported with approved changes",
    description="Every production deployment reported by GitHub or GitLab deployment events or by "
    "`deployment-reports/`, oldest first, with the change request it was matched to (environment, commit or "
    "artifact, approved at that time) and its exceptions (docs/rules.md L5). Needs view_audit or "
    "export_evidence.",
    parameters=[ReconciliationQuerySerializer],
    responses={200: ReconciliationRowSerializer(many=True), 400: INVALID, 401: UNAUTHENTICATED, 403: MAY_NOT_READ},
))
@extend_schema(tags=["deployments"])
class DeploymentReconciliationViewSet(mixins.ListModelMixin, VisibleObjectViewSet):
    queryset = ReportedDeployment.objects.none()
    serializer_class = ReconciliationRowSerializer

    def authorise(self, request):
        if not may_read(request):
            raise PermissionDenied("The reconciliation needs view_audit or export_evidence.")

    def get_queryset(self):
        if not may_read(self.request):
            return ReportedDeployment.objects.none()
        query = validated(ReconciliationQuerySerializer, self.request.query_params)
        queryset = reconciliation.production()
        if "since" in query:
            queryset = queryset.filter(reported_at__gte=query["since"])
        if "until" in query:
            queryset = queryset.filter(reported_at__lt=query["until"])
        if "environment" in query:
            queryset = queryset.filter(environment__slug=query["environment"])
        return reconciliation.tuples(queryset)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(reconciliation.rows(list(page)))
