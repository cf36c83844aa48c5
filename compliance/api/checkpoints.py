"""Checkpoints for witnesses and auditors to pull, and their cosignatures (docs/architecture.md
"Witnesses"; C2SP tlog-checkpoint and tlog-cosignature):

- ``audit/checkpoints/`` the seals' signed checkpoints, newest first; ``audit/checkpoints/latest/``
  and ``audit/checkpoints/{tree_size}/`` one of them with its perfect subtrees (what an auditor keeps
  as a *witnessed checkpoint*, ``audit.cosignature``). With ``Accept: text/plain`` the answer is
  the note itself, the log's signature line followed by every stored cosignature line.
- ``POST audit/cosignatures/ {checkpoint}``: a witness's note back, with its cosignature line(s);
  verified and stored by ``compliance.witnesses.services.cosign``.

Readers and witnesses as for the trail itself (view_audit or security_approve): a witness system
gets an API key of an account holding view_audit, and its cosignature must still verify with the
key registered for it (``compliance.witness``).
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, renderers, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from audit import merkle, tree
from audit.models import AuditSeal
from compliance.api.audit_events import MAY_NOT_READ, may_read_trail
from compliance.witnesses import services
from compliance.witnesses.models import Cosignature
from core.api import INVALID, MAX_ID, UNAUTHENTICATED, RefusalSerializer, StrictSerializer, validated
from core.viewsets import VisibleObjectViewSet


class NoteRenderer(renderers.BaseRenderer):
    """``text/plain``: the C2SP note (the view hands it over as ``{"note": ...}``)."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and isinstance(data.get("checkpoint"), str):
            return data["checkpoint"].encode("utf-8")
        return (data.get("detail", "") if isinstance(data, dict) else str(data)).encode("utf-8")


class CosignatureSerializer(serializers.Serializer):
    witness = serializers.CharField(help_text="The witness's key name.")
    timestamp = serializers.IntegerField(help_text="When the witness signed (POSIX seconds).")
    line = serializers.CharField(help_text="The C2SP cosignature line.")
    received_at = serializers.DateTimeField()


class CheckpointSerializer(serializers.Serializer):
    seal = serializers.IntegerField(help_text="The seal that signed it.")
    created_at = serializers.DateTimeField()
    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField(help_text="RFC 9162 root, hex.")
    checkpoint = serializers.CharField(help_text="The signed note with every stored cosignature line after the log's.")
    cosignatures = CosignatureSerializer(many=True)


class WitnessedCheckpointSerializer(CheckpointSerializer):
    subtrees = serializers.ListField(
        child=serializers.DictField(), help_text="The tree's perfect subtrees, largest first: {first, last, hash}.")


class CosignRequestSerializer(StrictSerializer):
    checkpoint = serializers.CharField(
        trim_whitespace=False, max_length=8192,
        help_text="The checkpoint note as the log signed it, with the witness's cosignature line(s) added.")


def _cosignatures(rows) -> list[dict]:
    return [{"witness": c.witness.name, "timestamp": c.timestamp, "line": c.line, "received_at": c.received_at}
            for c in rows]


def _answer(seal: AuditSeal, rows, subtrees: bool) -> dict:
    body = {"seal": seal.number, "created_at": seal.created_at, "tree_size": seal.tree_size,
            "root_hash": seal.root_hash, "checkpoint": services.witnessed_note(seal, rows),
            "cosignatures": _cosignatures(rows)}
    if subtrees:
        nodes = tree.read_nodes(set(merkle.perfect_subtrees(0, seal.tree_size)))
        body["subtrees"] = [{"first": (index << level) + 1, "last": (index + 1) << level,
                             "hash": nodes[(level, index)].hex()}
                            for level, index in merkle.perfect_subtrees(0, seal.tree_size)]
    return body


def _rows(numbers) -> dict[int, list[Cosignature]]:
    found: dict[int, list[Cosignature]] = {}
    for row in Cosignature.objects.filter(seal_number__in=list(numbers)).select_related("witness").order_by(
            "seal_number", "witness__name"):
        found.setdefault(row.seal_number, []).append(row)
    return found


NO_CHECKPOINT = OpenApiResponse(description="No seal signed a checkpoint of that size (or none yet).")
AS_NOTE = OpenApiResponse(OpenApiTypes.BINARY, description="The signed note with its cosignature lines (UTF-8 text).")


@extend_schema(tags=["audit-events"])
class CheckpointViewSet(mixins.ListModelMixin, VisibleObjectViewSet):
    renderer_classes = [renderers.JSONRenderer, NoteRenderer]
    serializer_class = CheckpointSerializer
    lookup_field = "tree_size"
    lookup_value_regex = "[0-9]{1,19}"
    filter_backends = []

    def authorise(self, request):
        if not may_read_trail(request):
            raise PermissionDenied("Reading the audit trail needs view_audit.")

    def get_renderers(self):
        """The note form only for one checkpoint; lists and every error answer JSON."""
        return super().get_renderers() if self.action in ("retrieve", "latest") else [renderers.JSONRenderer()]

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = renderers.JSONRenderer(), "application/json"
        return response

    def get_queryset(self):
        return AuditSeal.objects.exclude(checkpoint="").order_by("-number")

    @extend_schema(summary="List signed checkpoints", description="The seals' checkpoints, newest first, each "
                   "with the cosignatures witnesses sent.",
                   responses={(200, "application/json"): CheckpointSerializer(many=True), 401: UNAUTHENTICATED,
                              403: MAY_NOT_READ})
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        rows = _rows(seal.number for seal in page)
        return self.get_paginated_response([_answer(seal, rows.get(seal.number, []), False) for seal in page])

    def _one(self, seal):
        if seal is None:
            raise NotFound("No signed checkpoint of that tree size.")
        return Response(_answer(seal, _rows([seal.number]).get(seal.number, []), True))

    @extend_schema(summary="A signed checkpoint", description="The checkpoint a seal signed at this tree size, "
                   "with its cosignatures and the tree's perfect subtrees (keep it as a witnessed checkpoint). "
                   "`Accept: text/plain` answers the note alone.",
                   responses={(200, "application/json"): WitnessedCheckpointSerializer, (200, "text/plain"): AS_NOTE,
                              401: UNAUTHENTICATED, 403: MAY_NOT_READ, 404: NO_CHECKPOINT})
    def retrieve(self, request, tree_size=None):
        size = int(tree_size)
        seal = self.get_queryset().filter(tree_size=size).first() if 1 <= size <= MAX_ID else None
        return self._one(seal)

    @extend_schema(summary="The latest signed checkpoint", description="What witnesses pull: the latest seal's "
                   "checkpoint, as `retrieve`.",
                   responses={(200, "application/json"): WitnessedCheckpointSerializer, (200, "text/plain"): AS_NOTE,
                              401: UNAUTHENTICATED, 403: MAY_NOT_READ, 404: NO_CHECKPOINT})
    @action(detail=False, methods=["get"])
    def latest(self, request):
        return self._one(self.get_queryset().first())


COSIGN_REFUSED = OpenApiResponse(
    RefusalSerializer, description="`missing_duty`; `unknown_checkpoint` (no seal signed this note), "
    "`unknown_witness` (no active witness by that name and key), `bad_signature`. Nothing is stored.")
COSIGN_CONFLICT = OpenApiResponse(
    RefusalSerializer, description="`already_cosigned` (this witness cosigned this seal), `stale_timestamp` (not "
    "later than the witness's previous cosignature: a replay).")


@extend_schema(tags=["audit-events"])
class CosignatureViewSet(VisibleObjectViewSet):
    renderer_classes = [renderers.JSONRenderer]
    queryset = Cosignature.objects.none()
    pagination_class = None
    filter_backends = []

    def authorise(self, request):
        if not may_read_trail(request):
            raise PermissionDenied("Reading the audit trail needs view_audit.")

    @extend_schema(summary="Countersign a checkpoint", request=CosignRequestSerializer,
                   description="A witness posts the checkpoint note back with its C2SP cosignature/v1 line(s); "
                   "each must verify with its registered key.",
                   responses={201: CosignatureSerializer(many=True), 400: INVALID, 401: UNAUTHENTICATED,
                              403: COSIGN_REFUSED, 409: COSIGN_CONFLICT})
    def create(self, request):
        body = validated(CosignRequestSerializer, request.data)
        rows = services.cosign(actor=request.user, note=body["checkpoint"])
        return Response(_cosignatures(rows), status=201)
