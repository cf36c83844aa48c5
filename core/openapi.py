"""The OpenAPI document's shared parts (API.md "Errors"; issue 19 item 3), added by a drf-spectacular
postprocessing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``) so that no endpoint can forget
them and a generated client parses every error into one of two shared types:

- ``Detail`` ``{detail}`` for 401, 404, 415, 429 and 503, ``Refusal`` ``{detail, reasons: [{code,
  message}]}`` for 403 and 409 (the bodies ``core.api.exception_handler`` writes);
- ``components/responses``: one response per status; every operation answers 401, 403, 404, 409, 429
  and 503, and every operation that takes a body 415 (the API parses JSON only). An operation that
  says more about a status (which reason codes its 403 carries) keeps its own description, with the
  shared schema and headers;
- 429 and 503 carry ``Retry-After`` (seconds).

``docs/api-clients.md`` shows how a client is generated from the document."""
import copy

DETAIL = {
    "type": "object",
    "description": "401, 404, 415, 429 and 503 bodies (API.md).",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
REASON = {
    "type": "object",
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    "required": ["code", "message"],
}
REFUSAL = {
    "type": "object",
    "description": "403 and 409 bodies (API.md): every reason that applies, each with a stable code.",
    "properties": {
        "detail": {"type": "string"},
        "reasons": {"type": "array", "items": {"$ref": "#/components/schemas/Reason"}},
    },
    "required": ["detail", "reasons"],
}
FIELD_ERRORS = {
    "type": "object",
    "description": "400 bodies (API.md): `{field: [message, …]}`, `non_field_errors` for the body as a whole.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
RETRY_AFTER = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."},
}

# status: (component name, body schema, description, headers)
SHARED = {
    "401": ("Unauthenticated", "Detail", "No, bad, expired or revoked credentials: `{detail}`. Send "
            "`Authorization: Token <key>`.", None),
    "403": ("Forbidden", "Refusal", "Not allowed (a duty missing, a separation-of-duties rule): `{detail, "
            "reasons: [{code, message}, …]}` with every reason that applies.", None),
    "404": ("NotFound", "Detail", "The object does not exist or is not visible to the caller: `{detail}`.", None),
    "409": ("Conflict", "Refusal", "The object's state does not allow the action: `{detail, reasons}` "
            "(`invalid_state`, `revision_changed`, …).", None),
    "429": ("Throttled", "Detail", "Too many requests: `{detail}`; retry after `Retry-After` seconds.", RETRY_AFTER),
    "503": ("Unavailable", "Detail", "The database (or broker) does not answer for a moment: `{detail}`; "
            "retry after `Retry-After` seconds.", RETRY_AFTER),
}
BODY = {
    "415": ("UnsupportedMediaType", "Detail", "The body is not `application/json`: `{detail}`.", None),
}
METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")


def _response(schema: str, description: str, headers: dict | None) -> dict:
    response = {"description": description,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}
    if headers:
        response["headers"] = copy.deepcopy(headers)
    return response


def _share_field_errors(response: dict | None) -> None:
    """A 400 declared with the field-errors shape inline (``core.api.INVALID``) refers to the one
    ``FieldErrors`` schema, so a generator makes one type of it rather than one per operation."""
    media = (response or {}).get("content", {}).get("application/json", {})
    schema = media.get("schema")
    if isinstance(schema, dict) and schema.get("additionalProperties") == FIELD_ERRORS["additionalProperties"]:
        media["schema"] = {"$ref": "#/components/schemas/FieldErrors"}


def shared_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: the shared error components, on every operation."""
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(Detail=copy.deepcopy(DETAIL), Reason=copy.deepcopy(REASON), Refusal=copy.deepcopy(REFUSAL),
                   FieldErrors=copy.deepcopy(FIELD_ERRORS))
    responses = components.setdefault("responses", {})
    for name, schema, description, headers in (*SHARED.values(), *BODY.values()):
        responses[name] = _response(schema, description, headers)
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in METHODS:
                continue
            declared = operation.setdefault("responses", {})
            _share_field_errors(declared.get("400"))
            wanted = dict(SHARED, **(BODY if "requestBody" in operation else {}))
            for status, (name, schema, _, headers) in wanted.items():
                own = declared.get(status)
                if own and "$ref" not in own and own.get("description"):
                    # The operation's own words about this status (its reason codes), the shared body.
                    declared[status] = _response(schema, own["description"], headers)
                else:
                    declared[status] = {"$ref": f"#/components/responses/{name}"}
            operation["responses"] = dict(sorted(declared.items()))
    return result


def lib_doc_excludes() -> list:
    """``SPECTACULAR_SETTINGS["GET_LIB_DOC_EXCLUDES"]``: drf-spectacular's own list plus the API's
    base classes, whose docstrings speak to this code's readers, so a serializer without a docstring
    of its own is not described by ``StrictSerializer``'s in every generated client."""
    from drf_spectacular.plumbing import get_lib_doc_excludes

    from core.api import NoBody, StrictSerializer
    from core.viewsets import VisibleObjectViewSet

    return [*get_lib_doc_excludes(), StrictSerializer, NoBody, VisibleObjectViewSet]
