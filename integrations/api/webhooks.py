"""``POST integrations/github/webhook`` and ``integrations/gitlab/webhook`` (API.md): signed by the
platform, no token; 202 at once, the work happens in the worker (``integrations.sources``)."""
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import DetailSerializer
from integrations import webhooks

ACCEPTED = {
    "type": "object",
    "properties": {"delivery": {"type": "string"}, "duplicate": {"type": "boolean"}},
    "required": ["delivery", "duplicate"],
}


class _WebhookView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()
    platform = ""

    def post(self, request):
        try:
            body = request._request.body  # the raw bytes, as signed
        except RequestDataTooBig:
            return Response({"detail": "The delivery is too large."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        try:
            received = webhooks.receive(self.platform, body, request.headers)
        except webhooks.Unauthenticated as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_401_UNAUTHORIZED)
        except webhooks.Malformed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"delivery": received.delivery.delivery_id, "duplicate": received.duplicate},
                        status=status.HTTP_202_ACCEPTED)


RESPONSES = {
    202: OpenApiResponse(ACCEPTED, description="Stored (once per delivery id) and queued; `duplicate` for a replay."),
    400: OpenApiResponse(DetailSerializer, description="Not JSON, or no event / delivery id header."),
    401: OpenApiResponse(DetailSerializer, description="The signature or token does not match a linked "
                         "repository's secret; nothing is stored."),
    413: OpenApiResponse(DetailSerializer, description="Larger than the server accepts."),
}


@extend_schema(tags=["integrations"], summary="GitHub webhook (X-Hub-Signature-256)", request=None,
               responses=RESPONSES, auth=[])
class GitHubWebhookView(_WebhookView):
    platform = webhooks.GITHUB


@extend_schema(tags=["integrations"], summary="GitLab webhook (X-Gitlab-Token)", request=None,
               responses=RESPONSES, auth=[])
class GitLabWebhookView(_WebhookView):
    platform = webhooks.GITLAB
