"""Governance endpoints (API.md): thin views. Each write validates its input's shape, calls one
service and renders the result; the services decide and refuse (403/409), the selectors decide
what the caller may see (404 otherwise)."""
from django.core.validators import slug_re
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from core.api import NoBody, validated, DetailSerializer, FIELD_ERRORS, RefusalSerializer, UNAUTHENTICATED
from core.viewsets import VisibleObjectViewSet
from governance import selectors, services
from governance.api.filters import RoleAssignmentFilter
from governance.api.serializers import (
    EnvironmentSerializer,
    RoleAssignmentCreateSerializer,
    RoleAssignmentRejectSerializer,
    RoleAssignmentRevokeSerializer,
    RoleAssignmentSerializer,
    RoleSerializer,
    TeamSerializer,
)
from governance.models import Environment, Role, RoleAssignment, Team

NOT_FOUND = OpenApiResponse(DetailSerializer, description="Does not exist or is not visible to the caller.")
INVALID = OpenApiResponse(
    FIELD_ERRORS,
    description="Field errors: `{field: [message, …]}`.",
)
DENIED = OpenApiResponse(RefusalSerializer, description="Not allowed; `reasons` lists every rule that refuses.")
CONFLICT = OpenApiResponse(RefusalSerializer, description="The grant's status does not allow this (`invalid_state`).")


class OrganisationViewSet(viewsets.ReadOnlyModelViewSet):
    """Teams, environments and roles: named by slug, readable by every signed-in user, managed in
    the admin."""

    lookup_field = "slug"

    def get_object(self):
        # A slug that cannot exist is a miss; it must not reach the database (PostgreSQL refuses NUL).
        if not slug_re.match(self.kwargs[self.lookup_field]):
            raise NotFound()
        return super().get_object()


@extend_schema_view(
    list=extend_schema(responses={200: TeamSerializer(many=True), 401: UNAUTHENTICATED}),
    retrieve=extend_schema(responses={200: TeamSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND}),
)
@extend_schema(tags=["teams"])
class TeamViewSet(OrganisationViewSet):
    queryset = Team.objects.order_by("name")
    serializer_class = TeamSerializer


@extend_schema_view(
    list=extend_schema(responses={200: EnvironmentSerializer(many=True), 401: UNAUTHENTICATED}),
    retrieve=extend_schema(responses={200: EnvironmentSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND}),
)
@extend_schema(tags=["environments"])
class EnvironmentViewSet(OrganisationViewSet):
    queryset = Environment.objects.order_by("order", "name")
    serializer_class = EnvironmentSerializer


@extend_schema_view(
    list=extend_schema(responses={200: RoleSerializer(many=True), 401: UNAUTHENTICATED}),
    retrieve=extend_schema(responses={200: RoleSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND}),
)
@extend_schema(tags=["roles"])
class RoleViewSet(OrganisationViewSet):
    queryset = Role.objects.order_by("name").prefetch_related("duties")
    serializer_class = RoleSerializer


@extend_schema_view(
    list=extend_schema(
        description="Grants visible to the caller (V2): their own, their managed teams', or all for "
        "security and audit viewers.",
        responses={200: RoleAssignmentSerializer(many=True), 400: INVALID, 401: UNAUTHENTICATED},
    ),
    retrieve=extend_schema(responses={200: RoleAssignmentSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND}),
)
@extend_schema(tags=["role-assignments"])
class RoleAssignmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, VisibleObjectViewSet):
    # Only for the schema's introspection; every request reads through get_queryset.
    queryset = RoleAssignment.objects.none()
    serializer_class = RoleAssignmentSerializer
    filterset_class = RoleAssignmentFilter

    def get_queryset(self):
        return selectors.assignments_visible_to(self.request.user).select_related(
            "user", "role", "team", "environment", "requested_by", "approved_by", "ended_by"
        )

    def _render(self, assignment: RoleAssignment, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(RoleAssignmentSerializer(assignment).data, status=status_code)

    @extend_schema(
        summary="Request a grant (G1–G4)",
        description="Non-privileged grants are active at once; privileged ones start `pending` until a "
        "second person approves them.",
        request=RoleAssignmentCreateSerializer,
        responses={201: RoleAssignmentSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: DENIED},
    )
    def create(self, request):
        assignment = services.role_grant(actor=request.user, **validated(RoleAssignmentCreateSerializer, request.data))
        return self._render(assignment, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Approve a pending privileged grant (G4)",
        request=None,
        responses={200: RoleAssignmentSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: DENIED, 404: NOT_FOUND,
                   409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        assignment = self.get_object()
        validated(NoBody, request.data)
        return self._render(services.role_assignment_approve(actor=request.user, assignment=assignment))

    @extend_schema(
        summary="Reject or withdraw a pending grant",
        request=RoleAssignmentRejectSerializer,
        responses={
            200: RoleAssignmentSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: DENIED, 404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        assignment = self.get_object()
        data = validated(RoleAssignmentRejectSerializer, request.data)
        return self._render(services.role_assignment_reject(actor=request.user, assignment=assignment, **data))

    @extend_schema(
        summary="Revoke a grant at once (G5)",
        request=RoleAssignmentRevokeSerializer,
        responses={
            200: RoleAssignmentSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: DENIED, 404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        assignment = self.get_object()
        data = validated(RoleAssignmentRevokeSerializer, request.data)
        return self._render(services.role_assignment_revoke(actor=request.user, assignment=assignment, **data))
