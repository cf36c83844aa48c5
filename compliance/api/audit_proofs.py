"""Merkle proofs over the audit trail (docs/architecture.md "Checkpoints and proofs"):

- ``audit-events/{sequence}/proof/?tree_size=``: the RFC 9162 inclusion proof of one event in the
  tree of the first ``tree_size`` events (default: the whole log);
- ``audit/consistency/?from=&to=``: the consistency proof that the tree of ``to`` events extends
  the tree of ``from``.

Both answer O(log n) hashes from one read of the stored subtrees (``audit.tree``), in the same number
of queries at any size, with the tree's roots and, when a seal signed that size, its checkpoint, so
``compliance/continuity.py`` checks them offline. Readers as for the trail itself (view_audit).
"""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from audit import merkle, tree
from audit.models import AuditEvent, AuditSeal, ChainHead
from compliance.api.audit_events import MAY_NOT_READ, may_read_trail
from core.api import INVALID, MAX_ID, UNAUTHENTICATED
from core.viewsets import VisibleObjectViewSet


def _head_size() -> int:
    head = ChainHead.objects.filter(pk=1).first()
    return head.tree_size if head is not None else 0


def _checkpoint(size: int) -> str:
    return AuditSeal.objects.filter(tree_size=size).values_list("checkpoint", flat=True).first() or ""


class InclusionQuerySerializer(serializers.Serializer):
    tree_size = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Size of the tree to prove inclusion in (default: the log's)."
    )

    def validate(self, attrs):
        sequence, head = self.context["sequence"], self.context["head"]
        size = attrs.setdefault("tree_size", head)
        if size < sequence:
            raise serializers.ValidationError({"tree_size": [f"Must be at least the event's sequence ({sequence})."]})
        if size > head:
            raise serializers.ValidationError({"tree_size": [f"Beyond the log's current tree size ({head})."]})
        return attrs


class ConsistencyQuerySerializer(serializers.Serializer):
    def get_fields(self):  # "from" is a keyword
        return {
            "from": serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="The earlier tree size."),
            "to": serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="The later tree size."),
        }

    def validate(self, attrs):
        head = self.context["head"]
        if attrs["to"] < attrs["from"]:
            raise serializers.ValidationError({"to": ["Must not be before from."]})
        if attrs["to"] > head:
            raise serializers.ValidationError({"to": [f"Beyond the log's current tree size ({head})."]})
        return attrs


class InclusionProofSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    leaf_index = serializers.IntegerField(help_text="sequence - 1.")
    tree_size = serializers.IntegerField()
    hash = serializers.CharField(help_text="The event's chain hash (hex): the leaf's data.")
    leaf_hash = serializers.CharField(help_text="SHA-256(0x00 || the 32 bytes of hash), hex.")
    root_hash = serializers.CharField(help_text="RFC 9162 root of the tree of tree_size events, hex.")
    proof = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 inclusion path, hex, leaf up.")
    checkpoint = serializers.CharField(help_text="The signed checkpoint of this tree size, or empty if no seal signed it.")


class ConsistencyProofSerializer(serializers.Serializer):
    def get_fields(self):
        return {
            "from": serializers.IntegerField(),
            "to": serializers.IntegerField(),
            "from_root": serializers.CharField(help_text="Root of the tree of `from` events, hex."),
            "to_root": serializers.CharField(help_text="Root of the tree of `to` events, hex."),
            "proof": serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 consistency proof, hex."),
            "from_checkpoint": serializers.CharField(help_text="Signed checkpoint of `from`, or empty."),
            "to_checkpoint": serializers.CharField(help_text="Signed checkpoint of `to`, or empty."),
        }


class _TreeReader(VisibleObjectViewSet):
    queryset = AuditEvent.objects.none()
    pagination_class = None
    filter_backends = []

    def authorise(self, request):
        if not may_read_trail(request):
            raise PermissionDenied("Reading the audit trail needs view_audit.")


@extend_schema(tags=["audit-events"])
class AuditProofViewSet(_TreeReader):
    lookup_field = "sequence"
    lookup_value_regex = "[0-9]{1,19}"

    @extend_schema(
        summary="Prove an event is in the Merkle tree",
        description="The RFC 9162 inclusion proof of event `sequence` (leaf `sequence - 1`) in the tree of the first "
        "`tree_size` events, with that tree's root and signed checkpoint if a seal signed it.",
        parameters=[InclusionQuerySerializer],
        responses={200: InclusionProofSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: MAY_NOT_READ},
    )
    @action(detail=True, methods=["get"])
    def proof(self, request, sequence=None):
        sequence = int(sequence)
        event_hash = None
        if 1 <= sequence <= MAX_ID:
            event_hash = AuditEvent.objects.filter(sequence=sequence).values_list("hash", flat=True).first()
        if event_hash is None:
            raise NotFound("No such event.")
        query = InclusionQuerySerializer(data=request.query_params, context={"sequence": sequence, "head": _head_size()})
        query.is_valid(raise_exception=True)
        size = query.validated_data["tree_size"]
        proof, (root,) = tree.proof_with_roots(merkle.inclusion_ranges(sequence - 1, size), (size,))
        return Response({
            "sequence": sequence, "leaf_index": sequence - 1, "tree_size": size, "hash": event_hash,
            "leaf_hash": merkle.event_leaf(event_hash).hex(), "root_hash": root.hex(),
            "proof": [value.hex() for value in proof], "checkpoint": _checkpoint(size),
        })


@extend_schema(tags=["audit-events"])
class AuditConsistencyViewSet(_TreeReader):
    @extend_schema(
        summary="Prove a later tree extends an earlier one",
        description="The RFC 9162 consistency proof between the trees of the first `from` and `to` events, with "
        "both roots and their signed checkpoints where seals signed them.",
        parameters=[ConsistencyQuerySerializer],
        responses={200: ConsistencyProofSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: MAY_NOT_READ},
    )
    @action(detail=False, methods=["get"])
    def consistency(self, request):
        query = ConsistencyQuerySerializer(data=request.query_params, context={"head": _head_size()})
        query.is_valid(raise_exception=True)
        old, new = query.validated_data["from"], query.validated_data["to"]
        proof, (old_root, new_root) = tree.proof_with_roots(merkle.consistency_ranges(old, new), (old, new))
        return Response({
            "from": old, "to": new, "from_root": old_root.hex(), "to_root": new_root.hex(),
            "proof": [value.hex() for value in proof],
            "from_checkpoint": _checkpoint(old), "to_checkpoint": _checkpoint(new),
        })
