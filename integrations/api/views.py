"""The change-request endpoints the integrations add (API.md): the newest signed attestation, links to the source, and who the source says worked on a change."""
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from core.api import INVALID, UNAUTHENTICATED, DetailSerializer, RefusalSerializer, StrictSerializer
from core.viewsets import VisibleObjectViewSet
from integrations import sources
from integrations.models import Attestation, LearntContributor, LinkedRepository
from releases.selectors import change_requests_visible_to

DENIED = OpenApiResponse(RefusalSerializer, description="Not the change's author (`not_author`).")
ENVELOPE = {
    "type": "object",
    "properties": {
        "payloadType": {"type": "string", "enum": ["application/vnd.in-toto+json"]},
        "payload": {"type": "string", "description": "Base64 of the in-toto Statement v1 (JSON)."},
        "signatures": {
            "type": "array",
            "items": {"type": "object", "properties": {"keyid": {"type": "string"}, "sig": {"type": "string"}}},
        },
    },
    "required": ["payloadType", "payload", "signatures"],
}


class SourceLinkSerializer(StrictSerializer):
    url = serializers.CharField(required=False, allow_blank=True, max_length=500,
                                help_text="A pull request, merge request or commit URL.")
    sha = serializers.CharField(required=False, allow_blank=True, max_length=64)
    repository = serializers.CharField(required=False, allow_blank=True, max_length=280,
                                       help_text="With `sha`: `github:owner/name` or `gitlab:group/project`.")

    def validate(self, data):
        if not data.get("url") and not data.get("sha"):
            raise serializers.ValidationError({"url": ["Give a URL, or a sha with its repository."]})
        return data


class LearntContributorSerializer(serializers.Serializer):
    source = serializers.CharField()
    revision = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.CharField()
    login = serializers.CharField()
    commit_sha = serializers.CharField()
    user = serializers.CharField(source="user.username", default=None, allow_null=True,
                                 help_text="The account it matched; null: nobody matched (shown, not dropped).")
    learnt_at = serializers.DateTimeField()


class ChangeRequestSourceViewSet(VisibleObjectViewSet):
    """What the source and the signature say about one change the caller may see (404 otherwise):
    its attestation, its links to pull/merge requests and commits, and who the source says worked
    on it."""

    pagination_class = None  # each action answers one object or the whole (short) list

    def get_queryset(self):
        return change_requests_visible_to(self.request.user, at=timezone.now())

    @extend_schema(
        tags=["change-requests"],
        summary="The signed approval attestation of a production change (DSSE envelope)",
        description="The newest attestation issued for the change: on approval, and again when its deployment "
        "starts. An in-toto Statement v1 about the artifact's `sha256` digest, signed with the server's Ed25519 "
        "key (`signing_key --public`). Headers `X-Countersign-Attestation-Expires` (ISO time) and "
        "`X-Countersign-Attestation-Status` (`valid` or `expired`) say whether it still counts.",
        responses={
            200: OpenApiResponse(ENVELOPE, description="The DSSE envelope."),
            401: UNAUTHENTICATED,
            404: OpenApiResponse(DetailSerializer, description="No such change visible to the caller, or it has "
                                 "no attestation (only approved production changes have one)."),
        },
    )
    @action(detail=True, methods=["get"])
    def attestation(self, request, pk: str):
        now = timezone.now()
        cr = self.get_object()
        attestation = Attestation.objects.filter(change_request=cr).order_by("-issued_at", "-id").first()
        if attestation is None:
            raise NotFound("This change request has no attestation: only approved production changes get one.")
        response = Response(attestation.envelope)
        response["X-Countersign-Attestation-Expires"] = attestation.expires_at.isoformat()
        response["X-Countersign-Attestation-Status"] = "expired" if now >= attestation.expires_at else "valid"
        return response


    @extend_schema(
        tags=["change-requests"],
        summary="Link a change to its pull/merge request or a commit (issue 16)",
        description="Only the author; only to a repository linked to the change's team. What the repository "
        "already sent is read at once: its authors, committers, co-authors and pushers become contributors.",
        request=SourceLinkSerializer,
        responses={201: OpenApiResponse({"type": "object", "properties": {
            "id": {"type": "integer"}, "pull_request": {"type": "integer", "nullable": True},
            "commit_sha": {"type": "string"}}}), 400: INVALID, 401: UNAUTHENTICATED, 403: DENIED,
            404: OpenApiResponse(DetailSerializer)},
    )
    @action(detail=True, methods=["post"], url_path="source-links")
    def source_links(self, request, pk: str):
        cr = self.get_object()
        serializer = SourceLinkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        repository = None
        if data.get("repository"):
            platform, _, name = data["repository"].partition(":")
            repository = LinkedRepository.objects.filter(platform=platform, full_name=name, is_active=True).first()
        link = sources.link_source(actor=request.user, change_request=cr, url=data.get("url", ""),
                                   sha=data.get("sha", ""), repository=repository)
        return Response({"id": link.pk, "pull_request": link.pull_request, "commit_sha": link.commit_sha},
                        status=status.HTTP_201_CREATED)


    @extend_schema(
        tags=["change-requests"],
        summary="Who the source says worked on a change, matched or not (issue 16)",
        responses={200: LearntContributorSerializer(many=True), 401: UNAUTHENTICATED,
                   404: OpenApiResponse(DetailSerializer)},
    )
    @action(detail=True, methods=["get"], url_path="source-contributors")
    def source_contributors(self, request, pk: str):
        cr = self.get_object()
        rows = LearntContributor.objects.filter(change_request=cr).select_related("user").order_by("learnt_at", "id")
        return Response(LearntContributorSerializer(rows, many=True).data)
