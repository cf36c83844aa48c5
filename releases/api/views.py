"""Releases endpoints (API.md): thin views. Each write validates its input's shape, calls one
service and renders the result; the services and the policy engine decide and refuse (403/409),
the visibility selectors decide what the caller may see (404 otherwise, for every verb)."""
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ParseError, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import NoBody, object_pk, validated, DetailSerializer, FIELD_ERRORS, RefusalSerializer, UNAUTHENTICATED
from core.memo import per_request
from core.viewsets import VisibleObjectViewSet
from releases import policy, selectors, services, services_flow
from releases.api.filters import ChangeRequestFilter, DeploymentFilter
from releases.api.serializers import (
    DeploymentReportResultSerializer,
    DeploymentReportSerializer,
    CancelSerializer,
    ChangeRequestCreateSerializer,
    ChangeRequestSerializer,
    ChangeRequestUpdateSerializer,
    DecisionSerializer,
    DeploymentFinishSerializer,
    DeploymentSerializer,
    DeploymentStartSerializer,
    GateQuerySerializer,
    GateSerializer,
    ReReviewSerializer,
    RequestChangesSerializer,
    RollbackSerializer,
    WithdrawSerializer,
)
from releases.models import Approval, ChangeRequest, Deployment

NOT_FOUND = OpenApiResponse(DetailSerializer, description="Does not exist or is not visible to the caller (V1).")
INVALID = OpenApiResponse(
    FIELD_ERRORS,
    description="Malformed body (`{detail}`) or field errors: `{field: [message, …]}`.",
)
DENIED = OpenApiResponse(
    RefusalSerializer,
    description="Not allowed; `reasons` lists every rule that refuses (codes of RULES.md C1–C12).",
)
CONFLICT = OpenApiResponse(
    RefusalSerializer, description="The change request's or deployment's state does not allow this (`invalid_state`)."
)
DECISION_CONFLICT = OpenApiResponse(
    RefusalSerializer,
    description="The change is not pending (`invalid_state`), or it has moved past the `revision` named "
    "(`revision_changed`): read it again and review the new revision.",
)
INVALID_QUERY = OpenApiResponse(
    {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    description="Bad query parameters: `{parameter: [message, …]}`.",
)
REFUSALS = {400: INVALID, 401: UNAUTHENTICATED, 403: DENIED, 404: NOT_FOUND, 409: CONFLICT}


@extend_schema_view(
    list=extend_schema(
        description="Change requests visible to the caller (V1): their teams' changes, or all of them for "
        "audit viewers.",
        responses={200: ChangeRequestSerializer(many=True), 400: INVALID_QUERY, 401: UNAUTHENTICATED},
    ),
    retrieve=extend_schema(responses={200: ChangeRequestSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND}),
)
@extend_schema(tags=["change-requests"])
class ChangeRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, VisibleObjectViewSet):
    # Only for the schema's introspection; every request reads through get_queryset.
    queryset = ChangeRequest.objects.none()
    serializer_class = ChangeRequestSerializer
    filterset_class = ChangeRequestFilter

    # Actions whose service re-reads the change under its row lock: the view only checks that the
    # caller may see it, and reads nothing the service will read again.
    # The decision endpoints (approve, reject, request changes, deploy, retry) do not read it at
    # all: their services check V1 in their locked read (``_decided``).
    SERVICE_ACTIONS = frozenset({"partial_update", "submit", "withdraw", "re_review", "cancel"})

    @property
    def at(self):
        """The instant this request is decided at: the visibility rule and the gate's policy read
        the caller's teams and grants once for it (``selectors._per_request``)."""
        return per_request(self.request, "api_at", timezone.now)

    def get_queryset(self):
        visible = selectors.change_requests_visible_to(self.request.user, at=self.at)
        if self.action in self.SERVICE_ACTIONS:
            return visible
        return selectors.with_details(visible)

    def _decided(self, pk, serializer_class) -> tuple[ChangeRequest, dict]:
        """The change a decision endpoint names, unread, and the body validated by
        ``serializer_class``. Its service reads the change under its row lock and answers 404 where
        the caller may not see it (``selectors.decision_read``), in the statements it runs anyway
        (issue 21). A bad body on a change the caller may not see is a 404 too, not a 400: the
        visibility check runs before the field errors are answered."""
        change_request = ChangeRequest(pk=object_pk(pk))
        try:
            return change_request, validated(serializer_class, self.request.data)
        except (ParseError, ValidationError):
            self.get_object()
            raise

    def _render(self, change_request: ChangeRequest, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(ChangeRequestSerializer(change_request).data, status=status_code)

    @extend_schema(
        summary="Open a draft change request (C1)",
        description="The caller is the author and needs `submit` on the environment and membership of the team. "
        "Contributors (commit authors) may never approve the change.",
        request=ChangeRequestCreateSerializer,
        responses={201: ChangeRequestSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: DENIED},
    )
    def create(self, request):
        change_request = services.change_request_create(
            actor=request.user, **validated(ChangeRequestCreateSerializer, request.data)
        )
        return self._render(change_request, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Edit a draft or pending change request",
        description="Only the author. On a pending or approved request any change of what reviewers read (title, "
        "description, ticket, artifact, contributors, emergency reason) is a new revision: earlier approvals "
        "turn stale and it returns to pending (C3). `requested_reviewers` (whom the author asks to review) is not "
        "what reviewers read: changing it starts no new revision and gives nobody a power.",
        request=ChangeRequestUpdateSerializer,
        responses={200: ChangeRequestSerializer, **REFUSALS},
    )
    def partial_update(self, request, pk=None):
        change_request = self.get_object()
        changes = validated(ChangeRequestUpdateSerializer, request.data)
        return self._render(
            services.change_request_update(actor=request.user, change_request=change_request, changes=changes)
        )

    @extend_schema(
        summary="Submit a draft for review (C1)",
        description="Becomes `pending`, or `approved` at once where the policy is already met (C9).",
        request=None,
        responses={200: ChangeRequestSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: DENIED, 404: NOT_FOUND,
                   409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        change_request = self.get_object()
        validated(NoBody, request.data)
        return self._render(services.change_request_submit(actor=request.user, change_request=change_request))

    @extend_schema(
        summary="Approve the revision you reviewed (C2–C4, C11)",
        description="`revision` names what you reviewed; it must still be the current one. Refused where the "
        "environment takes approvals only from the portal's sign-off form (`interactive_signoff_required`).",
        request=DecisionSerializer,
        responses={200: ChangeRequestSerializer, **REFUSALS, 409: DECISION_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        change_request, data = self._decided(pk, DecisionSerializer)
        return self._render(
            services.change_request_approve(
                actor=request.user, change_request=change_request, via=Approval.Via.API, check_visible=True, **data
            )
        )

    @extend_schema(
        summary="Reject the revision you reviewed (C2, C4)",
        description="`revision` names what you reviewed; it must still be the current one. Any rejection closes "
        "the change request.",
        request=DecisionSerializer,
        responses={200: ChangeRequestSerializer, **REFUSALS, 409: DECISION_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        change_request, data = self._decided(pk, DecisionSerializer)
        return self._render(
            services.change_request_reject(
                actor=request.user, change_request=change_request, via=Approval.Via.API, check_visible=True, **data
            )
        )

    @extend_schema(
        summary="Send the revision you reviewed back to its author for changes",
        description="A non-final decision with the duties and separation of duties of a rejection (C2): the change "
        "becomes `changes_requested`; the author edits it (a new revision, whose earlier decisions go stale, C3) "
        "and submits it again. `comment` says what to change.",
        request=RequestChangesSerializer,
        responses={200: ChangeRequestSerializer, **REFUSALS, 409: DECISION_CONFLICT},
    )
    @action(detail=True, methods=["post"], url_path="request-changes")
    def request_changes(self, request, pk=None):
        change_request, data = self._decided(pk, RequestChangesSerializer)
        return self._render(
            services.change_request_request_changes(
                actor=request.user, change_request=change_request, via=Approval.Via.API, check_visible=True, **data
            )
        )

    @extend_schema(
        summary="Take a change out of review, back to a draft",
        description="Only the author, while `pending` or `changes_requested`. The draft is a new revision: "
        "decisions already made go stale (C3).",
        request=WithdrawSerializer,
        responses={200: ChangeRequestSerializer, **REFUSALS},
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        change_request = self.get_object()
        data = validated(WithdrawSerializer, request.data)
        return self._render(
            services_flow.change_request_withdraw(actor=request.user, change_request=change_request, **data)
        )

    @extend_schema(
        summary="Send an approved or failed change whose approvals expired back for review",
        description="The author or a manager of the team. Pending again at a new revision of the same content; "
        "`approvals_not_expired` (409) while its approvals still count.",
        request=ReReviewSerializer,
        responses={200: ChangeRequestSerializer, **REFUSALS},
    )
    @action(detail=True, methods=["post"], url_path="re-review")
    def re_review(self, request, pk=None):
        change_request = self.get_object()
        data = validated(ReReviewSerializer, request.data)
        return self._render(
            services_flow.change_request_re_review(actor=request.user, change_request=change_request, **data)
        )

    @extend_schema(
        summary="Withdraw a change request that has not started deploying",
        description="The author, or a manager of the team.",
        request=CancelSerializer,
        responses={200: ChangeRequestSerializer, **REFUSALS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        change_request = self.get_object()
        data = validated(CancelSerializer, request.data)
        return self._render(services.change_request_cancel(actor=request.user, change_request=change_request, **data))

    @extend_schema(
        summary="Ask the policy whether the caller may approve or deploy now",
        description="Answers for the caller with every reason that applies and what the policy requires. "
        "Never changes anything: CI calls it before deploying.",
        parameters=[
            OpenApiParameter(
                "action", str, OpenApiParameter.QUERY, required=True, enum=["approve", "deploy"],
                description="The action to decide.",
            )
        ],
        responses={200: GateSerializer, 400: INVALID_QUERY, 401: UNAUTHENTICATED, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"])
    def gate(self, request, pk=None):
        # Not get_object: the gate reads the change in statements built once (selectors.change_for_gate).
        change_request = selectors.change_for_gate(request.user, object_pk(pk), at=self.at)
        if change_request is None:
            raise NotFound
        decided_action = validated(GateQuerySerializer, request.query_params)["action"]
        context = selectors.policy_context(change_request, request.user, at=self.at, reuse=True)
        return Response(GateSerializer(policy.evaluate(context, decided_action, self.at).as_dict()).data)

    @extend_schema(
        summary="Start deploying an approved change (C5–C8)",
        description="The change request moves to `deploying`; report the outcome with "
        "`POST /api/v1/deployments/{id}/finish/`.",
        request=DeploymentStartSerializer,
        responses={201: DeploymentSerializer, **REFUSALS},
    )
    @action(detail=True, methods=["post"], url_path="deployments")
    def deployments(self, request, pk=None):
        change_request, data = self._decided(pk, DeploymentStartSerializer)
        deployment = services.deployment_start(actor=request.user, change_request=change_request, check_visible=True, **data)
        return Response(DeploymentSerializer(deployment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Try a failed deployment again, as a new attempt (C5–C8)",
        description="For a `failed` change: every check of a first deployment applies again (separation of "
        "duties, valid approvals, freeze, window, prior environment). The failed attempt stays on record.",
        request=DeploymentStartSerializer,
        responses={201: DeploymentSerializer, **REFUSALS},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        change_request, data = self._decided(pk, DeploymentStartSerializer)
        deployment = services.deployment_retry(actor=request.user, change_request=change_request, check_visible=True, **data)
        return Response(DeploymentSerializer(deployment).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        description="Deployments of the change requests visible to the caller (V1).",
        responses={200: DeploymentSerializer(many=True), 400: INVALID_QUERY, 401: UNAUTHENTICATED},
    ),
    retrieve=extend_schema(responses={200: DeploymentSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND}),
)
@extend_schema(tags=["deployments"])
class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, VisibleObjectViewSet):
    queryset = Deployment.objects.none()
    serializer_class = DeploymentSerializer
    filterset_class = DeploymentFilter

    def get_queryset(self):
        return selectors.deployments_visible_to(self.request.user).select_related("environment", "deployer")

    def _render(self, deployment: Deployment) -> Response:
        return Response(DeploymentSerializer(deployment).data)

    @extend_schema(
        summary="Report a deployment's outcome",
        description="Only the deployer. `succeeded` moves the change request to `deployed`, `failed` to `failed`.",
        request=DeploymentFinishSerializer,
        responses={200: DeploymentSerializer, **REFUSALS},
    )
    @action(detail=True, methods=["post"])
    def finish(self, request, pk=None):
        deployment = self.get_object()
        data = validated(DeploymentFinishSerializer, request.data)
        return self._render(services.deployment_finish(actor=request.user, deployment=deployment, **data))

    @extend_schema(
        summary="Roll back a successful deployment",
        description="Needs `deploy` on the environment; the change request moves to `rolled_back`.",
        request=RollbackSerializer,
        responses={200: DeploymentSerializer, **REFUSALS},
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        deployment = self.get_object()
        data = validated(RollbackSerializer, request.data)
        return self._render(services.deployment_rollback(actor=request.user, deployment=deployment, **data))


class DeploymentReportView(APIView):
    """E2: deploy tooling reports each artifact it puts on an environment; one with no approved
    change request there raises a critical ``unregistered_deployment`` alert."""

    @extend_schema(
        tags=["deployments"],
        request=DeploymentReportSerializer,
        responses={201: DeploymentReportResultSerializer, 400: INVALID, 401: UNAUTHENTICATED, 403: DENIED},
    )
    def post(self, request):
        data = validated(DeploymentReportSerializer, request.data)
        result = services.deployment_report(
            actor=request.user, environment=data["environment"], artifact=data["artifact"], source=data["source"]
        )
        return Response(DeploymentReportResultSerializer(result).data, status=status.HTTP_201_CREATED)
