"""Evidence export endpoints (API.md ``evidence-exports/``, RULES.md L3 and V3).

Only holders of export_evidence read, request, retry or download exports, and they see every
export (a compliance team shares its bundles). Anyone else is told so on the list and on requests
(403 ``missing_duty``) and gets 404 for a single export, as for anything they may not see. Every
write and download goes through ``compliance.evidence.services``, which records the audit event.
"""
import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from compliance.api.alerts import INVALID
from compliance.evidence import services
from compliance.evidence.responses import bundle_response
from audit.models import EvidenceExport
from core.api import UNAUTHENTICATED, DetailSerializer, NoBody, RefusalSerializer, StrictSerializer, validated
from core.viewsets import VisibleObjectViewSet
from core.memo import per_request

NOT_FOUND = OpenApiResponse(
    DetailSerializer,
    description="Does not exist, or the caller does not hold export_evidence.",
)
MISSING_DUTY = OpenApiResponse(RefusalSerializer, description="`missing_duty`: evidence exports need export_evidence.")
NOT_FAILED = OpenApiResponse(RefusalSerializer, description="Only a failed export can be retried (`invalid_state`).")
NOT_READY = OpenApiResponse(
    RefusalSerializer, description="The bundle is not built yet, or its file is gone (`invalid_state`)."
)


@extend_schema_field({"type": "string", "description": f"One of: {', '.join(EvidenceExport.Status.values)}."})
class ExportStatusField(serializers.CharField):
    """Described without an ``enum``, like the alerts' status: the schema's ``StatusEnum``
    component already names the grant statuses."""


class EvidenceExportSerializer(serializers.ModelSerializer):
    status = ExportStatusField(read_only=True)
    requested_by = serializers.SlugRelatedField(read_only=True, slug_field="username")
    progress = serializers.IntegerField(read_only=True, help_text="Percent done, 0–100.")
    sha256 = serializers.CharField(read_only=True, help_text="SHA-256 of the ZIP, once built.")
    size = serializers.IntegerField(read_only=True, allow_null=True, help_text="Bytes of the ZIP, once built.")
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = EvidenceExport
        fields = [
            "id", "framework", "period_start", "period_end", "requested_by", "requested_at", "status", "progress",
            "sha256", "size", "error", "download_url",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {"type": "string", "format": "uri", "nullable": True, "description": "Set once the bundle is built."}
    )
    def get_download_url(self, export):
        if export.status != EvidenceExport.Status.DONE:
            return None
        url = f"/api/v1/evidence-exports/{export.pk}/download/"
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class EvidenceExportCreateSerializer(StrictSerializer):
    """Shape only; ``export_request`` refuses a reversed, too long or future period (400)."""

    framework = serializers.ChoiceField(choices=EvidenceExport.Framework.choices)
    period_start = serializers.DateField(help_text="First UTC calendar day of the period, included.")
    period_end = serializers.DateField(help_text="Last UTC calendar day of the period, included.")


class EvidenceExportFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=EvidenceExport.Status.choices)
    framework = django_filters.ChoiceFilter(choices=EvidenceExport.Framework.choices)

    class Meta:
        model = EvidenceExport
        fields = ["status", "framework"]


class JsonErrorsNegotiation(DefaultContentNegotiation):
    """The download answers a ZIP (a ``FileResponse`` no renderer touches) or a JSON refusal, so
    an ``Accept: application/zip`` must not make DRF answer 406 before the view runs."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@extend_schema_view(
    list=extend_schema(
        description="Every evidence export, newest first. Needs export_evidence: anyone else gets 403 "
        "`missing_duty` rather than an empty list.",
        responses={200: EvidenceExportSerializer(many=True), 400: INVALID, 401: UNAUTHENTICATED, 403: MISSING_DUTY},
    ),
    retrieve=extend_schema(
        description="One export with its progress; `download_url` is set once the bundle is built.",
        responses={200: EvidenceExportSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND},
    ),
    create=extend_schema(
        summary="Request an evidence bundle for a framework and period",
        description="Queues the build (a Celery task) and answers at once; poll the export for its progress. "
        "The period is UTC calendar days, both ends included, at most "
        f"{services.MAX_PERIOD_DAYS} days, starting no later than today.",
        request=EvidenceExportCreateSerializer,
        responses={202: EvidenceExportSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: MISSING_DUTY},
    ),
)
@extend_schema(tags=["evidence-exports"])
class EvidenceExportViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, VisibleObjectViewSet
):
    # Only for the schema's introspection; every request reads through get_queryset.
    queryset = EvidenceExport.objects.none()
    serializer_class = EvidenceExportSerializer
    filterset_class = EvidenceExportFilter

    def _may_export(self) -> bool:
        return per_request(self.request, "may_export", lambda: services.may_export(self.request.user))

    def get_queryset(self):
        if not self._may_export():
            return EvidenceExport.objects.none()
        return services.exports_visible_to(self.request.user)

    def authorise(self, request) -> None:
        # The duty first: a caller who may not export learns that, not what is wrong with the body.
        if self.action in ("list", "create"):
            services.require_export_duty(request.user)

    def create(self, request, *args, **kwargs):
        export = services.export_request(actor=request.user, **validated(EvidenceExportCreateSerializer, request.data))
        return Response(self.get_serializer(export).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Download the bundle (a ZIP)",
        description="Streams the signed ZIP and records the download in the audit trail. "
        "Check it offline with `manage.py evidence_verify BUNDLE.zip`.",
        request=None,
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The bundle."),
            401: UNAUTHENTICATED, 404: NOT_FOUND, 409: NOT_READY,
        },
    )
    @action(detail=True, methods=["get"], content_negotiation_class=JsonErrorsNegotiation)
    def download(self, request, pk=None):
        export = self.get_object()
        bundle = services.export_download(actor=request.user, export=export)
        return bundle_response(export, bundle)

    @extend_schema(
        summary="Build a failed export again",
        request=None,
        responses={
            202: EvidenceExportSerializer, 400: INVALID, 401: UNAUTHENTICATED, 404: NOT_FOUND, 409: NOT_FAILED,
        },
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        export = self.get_object()
        validated(NoBody, request.data)
        export = services.export_retry(actor=request.user, export=export)
        return Response(self.get_serializer(export).data, status=status.HTTP_202_ACCEPTED)
