"""``GET change-requests/{id}/attestation/``: the newest signed attestation of a change (API.md)."""
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api.serializers import DetailSerializer, UNAUTHENTICATED
from integrations.models import Attestation
from releases.selectors import change_requests_visible_to

MAX_ID = 2**63 - 1
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


class AttestationView(APIView):
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
    def get(self, request, pk: str):
        if not (pk.isascii() and pk.isdigit() and 0 < int(pk) <= MAX_ID):
            raise NotFound()
        now = timezone.now()
        cr = get_object_or_404(change_requests_visible_to(request.user, at=now), pk=int(pk))
        attestation = Attestation.objects.filter(change_request=cr).order_by("-issued_at", "-id").first()
        if attestation is None:
            raise NotFound("This change request has no attestation: only approved production changes get one.")
        response = Response(attestation.envelope)
        response["X-Countersign-Attestation-Expires"] = attestation.expires_at.isoformat()
        response["X-Countersign-Attestation-Status"] = "expired" if now >= attestation.expires_at else "valid"
        return response
