"""API-wide plumbing (API.md): the error shape (400 field errors, 403/409 with reason codes, never
a 500 for a refusal a service raised), input serializers that refuse what they do not take, and
bounded paging. The base viewset that fetches and authorises is ``core.viewsets`` (DRF's generic views
read ``Pagination`` from here while they are imported, so they cannot be imported here)."""
from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from config import db_errors
from core.errors import Refused


def exception_handler(exc, context):
    if db_errors.is_unavailable(exc):
        # The database went away mid-request (a restart, a failover): 503, the client retries.
        return Response({"detail": db_errors.DETAIL}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(db_errors.RETRY_AFTER_SECONDS)})
    if isinstance(exc, Refused):
        return Response(
            {"detail": exc.detail, "reasons": [r.as_dict() for r in exc.reasons]}, status=exc.status_code
        )
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            body = {field: [m for e in errors for m in e.messages] for field, errors in exc.error_dict.items()}
            if "__all__" in body:
                body["non_field_errors"] = body.pop("__all__")
        else:
            body = {"non_field_errors": exc.messages}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ParseError):
        # A body that is not JSON at all is bad input like any other: 400 in the field-errors shape.
        return Response({api_settings.NON_FIELD_ERRORS_KEY: [str(exc.detail)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, exceptions.PermissionDenied) and not isinstance(getattr(exc, "detail", None), dict):
        response = drf_exception_handler(exc, context)
        if response is not None:
            code = getattr(exc, "reason_code", "missing_duty")
            response.data = {"detail": str(exc.detail), "reasons": [{"code": code, "message": str(exc.detail)}]}
        return response
    return drf_exception_handler(exc, context)


class StrictSerializer(serializers.Serializer):
    """The base of every input serializer of a write endpoint: a field it does not take (or one it
    only renders) is a 400 naming it, never silently dropped. A misspelt ``contributors`` dropped
    would let a contributor approve their own work, a misspelt ``expires_at`` make a grant last
    for ever. ``tests/api/test_unknown_fields.py`` posts an unknown field to every write endpoint."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            taken = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(name) for name in set(data) - taken)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def validated(serializer_class, data) -> dict:
    """The body validated by ``serializer_class``, or a 400 with its field errors."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class NoBody(StrictSerializer):
    """What a write endpoint that takes no body validates: any field at all is unknown."""


MAX_ID = 2**63 - 1  # the largest primary key a bigint holds


def object_pk(raw: str) -> int:
    """A primary key from the URL, or 404: an id that cannot exist (not digits, 0, beyond a
    bigint) never reaches the database, where it could overflow into a 500."""
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_ID):
        raise exceptions.NotFound()
    return int(raw)


class Pagination(LimitOffsetPagination):
    """Limit/offset paging with bounds: a larger ``limit`` is cut to ``max_limit`` and an offset past
    any real table is cut too, so absurd numbers page past the end instead of overflowing the
    database's integer (a 500 on SQLite and PostgreSQL)."""

    max_limit = 1000
    max_offset = 2**31 - 1

    def get_offset(self, request):
        return min(super().get_offset(request), self.max_offset)


def not_found(request, exception=None):
    """``handler404``: an API path no route matches (``/api/v1/role-assignments/1.5/``) answers in
    the API's shape, ``{detail}``; everything else gets our page, templates/404.html."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


# --- The error shapes of API.md, for every module's OpenAPI declarations ------------------------


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class RefusalSerializer(serializers.Serializer):
    """403 and 409 bodies (API.md)."""

    detail = serializers.CharField()
    reasons = ReasonSerializer(many=True)


class DetailSerializer(serializers.Serializer):
    """401 and 404 bodies (API.md)."""

    detail = serializers.CharField()


# Response declarations every API module shares (API.md's error shapes).
UNAUTHENTICATED = OpenApiResponse(DetailSerializer, description="No, bad, expired or revoked credentials.")
FIELD_ERRORS = {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}
INVALID = OpenApiResponse(FIELD_ERRORS, description="Field errors: `{field: [message, …]}`.")
