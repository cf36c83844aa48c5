"""The audit trail over the API (API.md ``audit-events/``, RULES.md V3 and L2; docs/audit-events.md).

Read by holders of ``view_audit`` or ``security_approve`` and by superusers, as the trail's admin
(compliance/admin.py) and alerts are; anyone else is told the list needs a duty (403
``missing_duty``). Pages are keyset pages on ``sequence`` (a cursor, never an offset, never a
count), so the thousandth page costs what the first does however long the trail is. Each event is
served as exactly the fields its hash covers (``audit.chain.canonical_fields``) plus ``prev_hash``
and ``hash``, so a consumer recomputes every hash it received without asking the server.
"""
from datetime import timezone as dt_timezone

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from audit.chain import canonical_fields
from audit.models import AuditEvent
from compliance import trail
from core.api import INVALID, MAX_ID, UNAUTHENTICATED, DetailSerializer, RefusalSerializer
from core.memo import per_request
from core.viewsets import VisibleObjectViewSet
from governance import duties
from governance.selectors import has_duty

MAY_NOT_READ = OpenApiResponse(
    RefusalSerializer, description="`missing_duty`: reading the audit trail needs view_audit (or security_approve)."
)
BAD_CURSOR = OpenApiResponse(DetailSerializer, description="The cursor is not one this endpoint handed out.")


def may_read_trail(request) -> bool:
    """Superusers and holders of view_audit or security_approve (V3); memoised per request."""
    user = request.user
    return per_request(request, "reads_trail", lambda: user.is_active and (
        user.is_superuser or has_duty(user, duties.VIEW_AUDIT) or has_duty(user, duties.SECURITY_APPROVE)
    ))


class AuditEventSerializer(serializers.Serializer):
    """An event as its hash covers it: ``hash = sha256(JSON(every field but prev_hash and hash,
    keys sorted, no whitespace, non-ASCII as is) + prev_hash)`` (docs/audit-events.md)."""

    sequence = serializers.IntegerField(help_text="1, 2, 3, … without a gap.")
    created_at = serializers.CharField(help_text="ISO 8601 in UTC with microseconds, as hashed.")
    actor_id = serializers.IntegerField(allow_null=True)
    actor_username = serializers.CharField(help_text="The actor's username when it acted; empty for the system.")
    action = serializers.CharField()
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    target_repr = serializers.CharField()
    environment = serializers.CharField(help_text="Environment slug, or empty.")
    team = serializers.CharField(help_text="Team slug, or empty.")
    ip = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField()
    request_id = serializers.CharField()
    data = serializers.JSONField()
    prev_hash = serializers.CharField(help_text="The previous event's hash; 64 zeros for event 1.")
    hash = serializers.CharField(help_text="SHA-256 (hex) of this event's fields and prev_hash.")

    def to_representation(self, event):
        return {**canonical_fields(event), "prev_hash": event.prev_hash, "hash": event.hash}


class SequencePagination(CursorPagination):
    """Keyset pages on ``sequence``: newest first, or oldest first with ``order=asc`` (the order to
    stream in and to verify in). ``limit`` is 100 by default, at most 1000."""

    ordering = "-sequence"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

    def decode_cursor(self, request):
        """A position that is not a sequence (a hand-made cursor) is 404 like any bad cursor,
        before it reaches the database as a comparison it cannot make or a number it cannot hold."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            position = cursor.position
            if not (position.isascii() and position.isdigit() and int(position) <= MAX_ID):
                raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_ordering(self, request, queryset, view):
        return ("sequence",) if request.query_params.get("order") == "asc" else ("-sequence",)


class _UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 date and time, handed to the database in UTC. ``0001-01-01T00:00+01:00`` has no
    UTC value and is refused (400) rather than overflowing in the database adapter (a 500). Any
    offset Python accepts (up to ±23:59) is converted, so PostgreSQL, which refuses offsets past
    ±15:59 in a literal, never sees one."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None:
            try:
                value = value.astimezone(dt_timezone.utc)
            except OverflowError:
                raise ValidationError("Out of range.", code="invalid") from None
        return value


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = _UtcDateTimeField


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(help_text="An action, e.g. change_request.approved.")
    actor = django_filters.CharFilter(field_name="actor_username", help_text="The actor's username.")
    environment = django_filters.CharFilter(help_text="Environment slug.")
    team = django_filters.CharFilter(help_text="Team slug.")
    since = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Recorded at or after (ISO 8601)."
    )
    until = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Recorded before (ISO 8601)."
    )
    after = django_filters.NumberFilter(
        field_name="sequence", lookup_expr="gt", min_value=0, max_value=MAX_ID, help_text="Only events after this sequence (to resume)."
    )
    before = django_filters.NumberFilter(
        field_name="sequence", lookup_expr="lt", min_value=1, max_value=MAX_ID, help_text="Only events before this sequence."
    )
    order = django_filters.ChoiceFilter(
        choices=[("desc", "newest first"), ("asc", "oldest first")], method="_ordered",
        help_text="desc (default) or asc.",
    )

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "environment", "team", "since", "until", "after", "before", "order"]

    def _ordered(self, queryset, name, value):
        return queryset  # the pagination orders (SequencePagination.get_ordering)


class VerifyQuerySerializer(serializers.Serializer):
    # "from" is a keyword: the fields are declared by name below.
    def get_fields(self):
        return {
            "from": serializers.IntegerField(min_value=1, help_text="First sequence of the range."),
            "to": serializers.IntegerField(min_value=1, help_text="Last sequence of the range (included)."),
        }

    def validate(self, attrs):
        if attrs["to"] < attrs["from"]:
            raise serializers.ValidationError({"to": ["Must not be before from."]})
        return attrs


class SealSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    created_at = serializers.CharField()
    sequence = serializers.IntegerField()
    head_hash = serializers.CharField()
    prev_signature = serializers.CharField()
    key_fingerprint = serializers.CharField()
    signature = serializers.CharField()
    signature_valid = serializers.BooleanField()


class CoveringSealSerializer(SealSerializer):
    matches_chain = serializers.BooleanField()


class ChainBreakSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    problem = serializers.CharField()


class SealBreakSerializer(serializers.Serializer):
    seal = serializers.IntegerField()
    problem = serializers.CharField()


class ChainHeadSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    hash = serializers.CharField()


class VerifyResultSerializer(serializers.Serializer):
    def get_fields(self):
        return {
            "from": serializers.IntegerField(),
            "to": serializers.IntegerField(),
            "ok": serializers.BooleanField(help_text="No break in the events nor in the seals."),
            "sealed": serializers.BooleanField(help_text="ok, and a seal covers the range."),
            "checked": serializers.IntegerField(help_text="Events recomputed (the range and on to its seal)."),
            "last_hash": serializers.CharField(help_text="The hash of event `to`, as recomputed."),
            "break": ChainBreakSerializer(allow_null=True),
            "seal": CoveringSealSerializer(allow_null=True, help_text="The first seal at or after `to`."),
            "seals_checked": serializers.IntegerField(),
            "seal_break": SealBreakSerializer(allow_null=True),
            "latest_seal": SealSerializer(allow_null=True),
            "chain_head": ChainHeadSerializer(),
            "public_key_fingerprint": serializers.CharField(help_text="SHA-256 of the raw 32-byte public key."),
        }


@extend_schema_view(
    list=extend_schema(
        description="The audit trail, newest first (`order=asc`: oldest first), in keyset pages on `sequence` "
        "(follow `next`). Needs view_audit: anyone else gets 403 `missing_duty` rather than an empty list.",
        responses={200: AuditEventSerializer(many=True), 400: INVALID, 401: UNAUTHENTICATED, 403: MAY_NOT_READ,
                   404: BAD_CURSOR},
    ),
)
@extend_schema(tags=["audit-events"])
class AuditEventViewSet(mixins.ListModelMixin, VisibleObjectViewSet):
    queryset = AuditEvent.objects.none()  # for the schema; requests read through get_queryset
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    pagination_class = SequencePagination

    def authorise(self, request):
        if not may_read_trail(request):
            raise PermissionDenied("Reading the audit trail needs view_audit.")

    def get_queryset(self):
        if not may_read_trail(self.request):
            return AuditEvent.objects.none()
        return AuditEvent.objects.all()

    @extend_schema(
        summary="Check a range of events against the hash chain and the seals",
        description="Recomputes events `from`…`to` (and on to the first seal that covers `to`), checks that "
        "seal's Ed25519 signature and head hash and the seals from it to the latest. Answers 200 with `ok` "
        f"false and the break when something does not verify. At most {trail.MAX_SPAN} events at once.",
        parameters=[VerifyQuerySerializer],
        responses={200: VerifyResultSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: MAY_NOT_READ},
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def verify(self, request):
        query = VerifyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(trail.verify_range(query.validated_data["from"], query.validated_data["to"]))
