"""SCIM 2.0 (RFC 7643, 7644) at /scim/v2/: Users and Groups, filters, PATCH, pagination and ETags,
as Okta and Microsoft Entra ID call it (docs/identity.md). Payloads are parsed, patched, filtered
and serialised with scim2-models; what they mean for accounts and grants is decided by
``identity.services`` (provisioning, groups, leavers).

Authentication: ``Authorization: Bearer <key>``, an API key (governance.ApiToken: hashed, expiring,
revocable, audited) that a ``ProvisioningCredential`` marks as the provider's
(``manage.py create_scim_token``). Any other key, or none, is 401.
"""
import hashlib
import json
import re

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError as PydanticError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    Email,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    GroupMember,
    Manager,
    Meta,
    Name,
    Patch,
    PatchOp,
    ResourceType,
    Required,
    ResponseParameters,
    SCIMException,
    ScimFilter,
    ServiceProviderConfig,
    Sort,
    User,
)

from governance.models import ApiToken
from governance.services import api_token_touch
from identity.models import Person, ProvisioningCredential, ScimGroup
from identity.services import groups as group_services
from identity.services import provisioning

UserModel = get_user_model()
ScimUser = User[EnterpriseUser]
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MEDIA_TYPE = "application/scim+json"
MAX_COUNT = 200
# The attributes Countersign keeps; the published schemas name only these, so a client (and
# scim2-tester) sends and expects back only what is stored.
USER_ATTRIBUTES = {"userName": None, "name": {"givenName", "familyName"}, "displayName": None, "active": None,
                   "emails": {"value", "type"}, "groups": None}
GROUP_ATTRIBUTES = {"displayName": None, "members": {"value", "$ref", "type"}}
ENTERPRISE_ATTRIBUTES = {"manager": None}


# --- Answers ----------------------------------------------------------------------------------------


def _json(payload, status=200, headers=None) -> HttpResponse:
    response = HttpResponse(json.dumps(payload), status=status, content_type=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error(status: int, detail: str, scim_type: str | None = None) -> HttpResponse:
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return _json(body, status)


def _etag(payload: dict) -> str:
    body = {k: v for k, v in payload.items() if k != "meta"}
    return 'W/"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20] + '"'


def _location(request, kind: str, pk) -> str:
    return request.build_absolute_uri(f"/scim/v2/{kind}/{pk}")


# --- Resources ----------------------------------------------------------------------------------


def user_resource(request, user, person: Person | None) -> ScimUser:
    names = Name(given_name=user.first_name or None, family_name=user.last_name or None)
    email_type = (person.email_type if person else "") or "work"
    resource = ScimUser(
        id=str(user.pk), external_id=(person.external_id or None) if person else None, user_name=user.username,
        name=names if (user.first_name or user.last_name) else None,
        display_name=((person.display_name if person else "") or user.get_full_name() or None), active=user.is_active,
        emails=[Email(value=user.email, type=email_type)] if user.email else None,
        groups=[{"value": str(g.pk), "display": g.display_name, "$ref": _location(request, "Groups", g.pk)}
                for g in user.scim_groups.all()] or None,
    )
    if person is not None and person.manager_id:
        resource[EnterpriseUser] = EnterpriseUser(manager=Manager(value=str(person.manager_id),
                                                                  ref=_location(request, "Users", person.manager_id)))
    resource.meta = Meta(resource_type="User", location=_location(request, "Users", user.pk),
                         created=person.created_at if person else user.date_joined,
                         last_modified=person.updated_at if person else user.date_joined)
    return resource


def group_resource(request, group: ScimGroup) -> Group:
    members = sorted(group.members.all(), key=lambda u: u.pk)  # all(): the list's prefetched members
    resource = Group(id=str(group.pk), external_id=group.external_id or None, display_name=group.display_name,
                     members=[GroupMember(value=str(u.pk), type="User", ref=_location(request, "Users", u.pk))
                              for u in members] or None)
    resource.meta = Meta(resource_type="Group", location=_location(request, "Groups", group.pk),
                         created=group.created_at, last_modified=group.updated_at)
    return resource


def _dump(resource, params: ResponseParameters | None = None) -> dict:
    full = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    version = _etag(full)
    payload = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params) if params else full
    if isinstance(payload.get("meta"), dict):
        payload["meta"]["version"] = version
    return payload


def _visible_users():
    """Every account but the break-glass local superusers the provider did not provision."""
    return (UserModel.objects.exclude(person__scim_deleted=True)
            .exclude(is_superuser=True, person__isnull=True).exclude(is_superuser=True, person__provisioned=False)
            .select_related("person").prefetch_related("scim_groups").order_by("pk"))


def _person(user) -> Person | None:
    try:
        return user.person
    except Person.DoesNotExist:
        return None


# --- Authentication -------------------------------------------------------------------------------


def _authenticate(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    digest = hashlib.sha256(key.strip().encode()).hexdigest()
    token = ApiToken.objects.select_related("user").filter(key_hash=digest).first()
    now = timezone.now()
    if token is None or not token.is_usable(now) or not token.user.is_active:
        return None
    if not ProvisioningCredential.objects.filter(token=token).exists():
        return None
    api_token_touch(token, at=now)
    return token.user


def scim_view(handler):
    @csrf_exempt
    def view(request, *args, **kwargs):
        actor = _authenticate(request)
        if actor is None:
            response = error(401, "A provisioning bearer token is required.")
            response["WWW-Authenticate"] = 'Bearer realm="scim"'
            return response
        try:
            return handler(request, actor, *args, **kwargs)
        except ValidationError as invalid:
            messages = invalid.message_dict if hasattr(invalid, "error_dict") else {"": invalid.messages}
            return error(400, "; ".join(f"{k}: {' '.join(v)}" if k else " ".join(v) for k, v in messages.items()),
                         "invalidValue")
        except SCIMException as refused:
            return error(refused.status, refused.detail or str(refused), refused.scim_type or None)
        except PydanticError as invalid:
            return error(400, "; ".join(e.get("msg", "") for e in invalid.errors()) or "Invalid payload.", "invalidValue")

    return view


def _body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("The body is not JSON.") from None
    if not isinstance(body, dict):
        raise ValidationError("The body must be a JSON object.")
    return body


def _precondition(request, current: dict) -> HttpResponse | None:
    wanted = request.META.get("HTTP_IF_MATCH")
    if wanted and wanted.strip() != "*" and current["meta"]["version"] not in [v.strip() for v in wanted.split(",")]:
        return error(412, "The resource changed since you read it (If-Match does not match its ETag).")
    return None


def _params(request, query=None) -> ResponseParameters | None:
    query = request.GET if query is None else query
    attributes = [a for a in query.get("attributes", "").split(",") if a.strip()]
    excluded = [a for a in query.get("excludedAttributes", "").split(",") if a.strip()]
    if not attributes and not excluded:
        return None
    return ResponseParameters(attributes=attributes or None, excluded_attributes=excluded or None)


# --- Lists, filters, pagination --------------------------------------------------------------------

_SIMPLE_EQ = re.compile(r'^\s*(\w+(?:\.\w+)?)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_USER_COLUMNS = {"username": "username__iexact", "externalid": "person__external_id", "id": "pk",
                 "emails.value": "email__iexact", "emails": "email__iexact"}
_GROUP_COLUMNS = {"displayname": "display_name__iexact", "externalid": "external_id", "id": "pk"}


def _int(query, name, default):
    try:
        return int(query.get(name, default))
    except (TypeError, ValueError):
        raise ValidationError({name: ["Must be an integer."]}) from None


def _search_query(request) -> dict:
    """POST .search (RFC 7644 3.4.3): the SearchRequest's parameters as a query string has them."""
    body = _body(request)
    query = {}
    for name in ("filter", "startIndex", "count"):
        if body.get(name) is not None:
            query[name] = str(body[name])
    for name in ("attributes", "excludedAttributes"):
        if body.get(name):
            query[name] = ",".join(body[name]) if isinstance(body[name], list) else str(body[name])
    return query


def _list(request, queryset, build, model, columns, query=None):
    query = request.GET if query is None else query
    start = max(_int(query, "startIndex", 1), 1)
    count = min(max(_int(query, "count", 100), 0), MAX_COUNT)
    text = query.get("filter", "").strip()
    if text:
        simple = _SIMPLE_EQ.match(text)
        column = columns.get(simple.group(1).lower()) if simple else None
        if column:
            value = json.loads(f'"{simple.group(2)}"')
            if column == "pk" and not value.isdigit():
                queryset = queryset.none()
            else:
                queryset = queryset.filter(**{column: value})
            resources = [build(obj) for obj in queryset]
        else:
            try:
                expression = ScimFilter[model](text)
            except Exception as invalid:  # the grammar's own errors: 400 invalidFilter
                return error(400, f"Invalid filter: {invalid}", "invalidFilter")
            resources = [r for r in (build(obj) for obj in queryset) if expression.match(r)]
    else:
        resources = None
    if resources is None:
        total = queryset.count()
        page = [build(obj) for obj in queryset[start - 1:start - 1 + count]] if count else []
    else:
        total = len(resources)
        page = resources[start - 1:start - 1 + count]
    params = _params(request, query)
    return _json({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": total,
                  "startIndex": start, "itemsPerPage": len(page), "Resources": [_dump(r, params) for r in page]})


# --- Users ----------------------------------------------------------------------------------------


def _account(resource: ScimUser, *, replacing: bool) -> provisioning.Account:
    """``replacing``: the resource is the whole new state (PUT, or PATCH applied to the current
    one), so a missing manager clears it; on creation a missing manager is simply none."""
    primary = next((e for e in (resource.emails or []) if e.primary), None) or next(iter(resource.emails or []), None)
    extension = resource[EnterpriseUser]
    manager = extension.manager.value if extension and extension.manager and extension.manager.value else ""
    if not manager and not replacing:
        manager = None
    name = resource.name
    return provisioning.Account(
        username=resource.user_name or "", email=str(primary.value) if primary and primary.value else "",
        first_name=(name.given_name or "") if name else "", last_name=(name.family_name or "") if name else "",
        active=resource.active, external_id=resource.external_id or "", manager_id=manager,
        display_name=resource.display_name or "",
        email_type=str(getattr(primary.type, "value", primary.type) or "") if primary and primary.type else "",
    )


def _parse_user(body: dict, ctx) -> ScimUser:
    body = dict(body)
    extension = body.get(ENTERPRISE)
    if isinstance(extension, dict) and isinstance(extension.get("manager"), str):  # Entra sends a bare id
        body[ENTERPRISE] = {**extension, "manager": {"value": extension["manager"]}}
    return ScimUser.model_validate(body, scim_ctx=ctx) if ctx else ScimUser.model_validate(body)


@scim_view
def users_search(request, actor):
    if request.method != "POST":
        return error(405, "Use POST.")
    return _list(request, _visible_users(), lambda u: user_resource(request, u, _person(u)), ScimUser, _USER_COLUMNS,
                 _search_query(request))


@scim_view
def groups_search(request, actor):
    if request.method != "POST":
        return error(405, "Use POST.")
    return _list(request, _groups(), lambda g: group_resource(request, g), Group, _GROUP_COLUMNS, _search_query(request))


@scim_view
def search_everything(request, actor):
    return error(501, "Search one resource type at a time: POST /Users/.search or /Groups/.search.")


def _user_or_404(pk):
    user = _visible_users().filter(pk=pk).first() if str(pk).isdigit() else None
    return user


@scim_view
def users(request, actor):
    if request.method == "GET":
        return _list(request, _visible_users(), lambda u: user_resource(request, u, _person(u)), ScimUser, _USER_COLUMNS)
    if request.method != "POST":
        return error(405, "Use GET or POST.")
    resource = _parse_user(_body(request), None)
    account = _account(resource, replacing=False)
    with transaction.atomic():
        if provisioning.username_taken(account.username):
            return error(409, f"userName {account.username!r} is taken.", "uniqueness")
        user = provisioning.account_provision(actor=actor, account=account)
    user = _visible_users().get(pk=user.pk)
    payload = _dump(user_resource(request, user, _person(user)))
    return _json(payload, 201, {"Location": payload["meta"]["location"], "ETag": payload["meta"]["version"]})


def _normalise_patch(body: dict) -> dict:
    """Entra's and Okta's PATCH shapes as RFC 7644 reads them: a bare manager id, a remove of
    ``members`` carrying a value (Entra) instead of a filtered path."""
    operations = []
    for op in body.get("Operations") or []:
        if not isinstance(op, dict):
            operations.append(op)
            continue
        path, value = op.get("path") or "", op.get("value")
        if path.lower().endswith(":manager") and isinstance(value, str):
            op = {**op, "value": {"value": value}}
        if str(op.get("op", "")).lower() == "remove" and path.lower() == "members" and isinstance(value, list):
            operations.extend({"op": "remove", "path": f'members[value eq "{m.get("value")}"]'}
                              for m in value if isinstance(m, dict))
            continue
        operations.append(op)
    return {**body, "Operations": operations}


@scim_view
def user_detail(request, actor, pk):
    with transaction.atomic():
        user = _user_or_404(pk)
        if user is None:
            return error(404, f"No user {pk}.")
        if request.method in ("PUT", "PATCH", "DELETE"):
            UserModel.objects.select_for_update().filter(pk=user.pk).first()
        current = user_resource(request, user, _person(user))
        payload = _dump(current)
        if request.method == "GET":
            return _json(_dump(current, _params(request)), headers={"ETag": payload["meta"]["version"]})
        refused = _precondition(request, payload)
        if refused:
            return refused
        if request.method == "DELETE":
            provisioning.account_delete(actor=actor, user=user)
            return HttpResponse(status=204)
        if request.method == "PUT":
            resource = _parse_user(_body(request), None)
        elif request.method == "PATCH":
            patch = PatchOp[ScimUser].model_validate(_normalise_patch(_body(request)), scim_ctx=Context.RESOURCE_PATCH_REQUEST)
            resource = current
            patch.patch(resource)
        else:
            return error(405, "Use GET, PUT, PATCH or DELETE.")
        account = _account(resource, replacing=True)
        if provisioning.username_taken(account.username, exclude_pk=user.pk):
            return error(409, f"userName {account.username!r} is taken.", "uniqueness")
        provisioning.account_update(actor=actor, user=user, account=account)
    user = _visible_users().get(pk=user.pk)
    payload = _dump(user_resource(request, user, _person(user)))
    return _json(payload, headers={"ETag": payload["meta"]["version"]})


# --- Groups ---------------------------------------------------------------------------------------


def _members(resource: Group):
    ids = [m.value for m in (resource.members or []) if m.value]
    found = {str(u.pk): u for u in _visible_users().filter(pk__in=[i for i in ids if str(i).isdigit()])}
    missing = [i for i in ids if str(i) not in found]
    if missing:
        raise ValidationError({"members": [f"No such users: {', '.join(map(str, missing))}."]})
    return list(found.values())


def _groups():
    return ScimGroup.objects.prefetch_related("members").order_by("pk")


@scim_view
def groups(request, actor):
    if request.method == "GET":
        return _list(request, _groups(), lambda g: group_resource(request, g), Group, _GROUP_COLUMNS)
    if request.method != "POST":
        return error(405, "Use GET or POST.")
    resource = Group.model_validate(_body(request))
    if not (resource.display_name or "").strip():
        raise ValidationError({"displayName": ["displayName is required."]})
    with transaction.atomic():
        if ScimGroup.objects.filter(display_name__iexact=resource.display_name.strip()).exists():
            return error(409, f"A group named {resource.display_name!r} exists.", "uniqueness")
        group = group_services.group_create(actor=actor, display_name=resource.display_name.strip(),
                                            external_id=resource.external_id or "", users=_members(resource))
    payload = _dump(group_resource(request, _groups().get(pk=group.pk)))
    return _json(payload, 201, {"Location": payload["meta"]["location"], "ETag": payload["meta"]["version"]})


@scim_view
def group_detail(request, actor, pk):
    with transaction.atomic():
        group = _groups().filter(pk=pk).first() if str(pk).isdigit() else None
        if group is None:
            return error(404, f"No group {pk}.")
        current = group_resource(request, group)
        payload = _dump(current)
        if request.method == "GET":
            return _json(_dump(current, _params(request)), headers={"ETag": payload["meta"]["version"]})
        refused = _precondition(request, payload)
        if refused:
            return refused
        if request.method == "DELETE":
            group_services.group_delete(actor=actor, group=group)
            return HttpResponse(status=204)
        if request.method == "PUT":
            resource = Group.model_validate(_body(request))
        elif request.method == "PATCH":
            patch = PatchOp[Group].model_validate(_normalise_patch(_body(request)), scim_ctx=Context.RESOURCE_PATCH_REQUEST)
            resource = current
            patch.patch(resource)
        else:
            return error(405, "Use GET, PUT, PATCH or DELETE.")
        name = (resource.display_name or "").strip()
        if not name:
            raise ValidationError({"displayName": ["displayName is required."]})
        if ScimGroup.objects.filter(display_name__iexact=name).exclude(pk=group.pk).exists():
            return error(409, f"A group named {name!r} exists.", "uniqueness")
        group_services.group_update(actor=actor, group=group, display_name=name,
                                    external_id=resource.external_id or "", users=_members(resource))
    payload = _dump(group_resource(request, _groups().get(pk=group.pk)))
    return _json(payload, headers={"ETag": payload["meta"]["version"]})


# --- Discovery -------------------------------------------------------------------------------------


def _schema(model, keep: dict) -> dict:
    """The model's schema, narrowed to what is stored. ``active`` is published as required: every
    account is either active or disabled, and it cannot be removed."""
    schema = model.to_schema()
    schema.attributes = [a for a in schema.attributes if a.name in keep]
    for attribute in schema.attributes:
        if keep[attribute.name] and attribute.sub_attributes:
            attribute.sub_attributes = [s for s in attribute.sub_attributes if s.name in keep[attribute.name]]
        if attribute.name == "active":
            attribute.required = Required.true
    data = schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    data["meta"] = {"resourceType": "Schema", "location": f"/scim/v2/Schemas/{schema.id}"}
    return data


def _schemas() -> list[dict]:
    return [_schema(User, USER_ATTRIBUTES), _schema(EnterpriseUser, ENTERPRISE_ATTRIBUTES),
            _schema(Group, GROUP_ATTRIBUTES)]


def _resource_types(request) -> list[dict]:
    user = ResourceType.from_resource(ScimUser).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    group = ResourceType.from_resource(Group).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    for data in (user, group):
        data["meta"] = {"resourceType": "ResourceType", "location": request.build_absolute_uri(f"/scim/v2/ResourceTypes/{data['id']}")}
    return [user, group]


def _discovery_list(items):
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": len(items),
            "startIndex": 1, "itemsPerPage": len(items), "Resources": items}


@scim_view
def service_provider_config(request, actor):
    if request.method != "GET":
        return error(405, "Use GET.")
    config = ServiceProviderConfig(
        patch=Patch(supported=True), bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_COUNT), change_password=ChangePassword(supported=False),
        sort=Sort(supported=False), etag=ETag(supported=True),
        authentication_schemes=[AuthenticationScheme(type="oauthbearertoken", name="Bearer token", primary=True,
                                                     description="A provisioning key: manage.py create_scim_token")],
    )
    data = config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    data["meta"] = {"resourceType": "ServiceProviderConfig", "location": request.build_absolute_uri("/scim/v2/ServiceProviderConfig")}
    return _json(data)


@scim_view
def schemas(request, actor, schema_id=None):
    if request.method != "GET":
        return error(405, "Use GET.")
    items = _schemas()
    if schema_id is None:
        return _json(_discovery_list(items))
    found = next((s for s in items if s["id"] == schema_id), None)
    return _json(found) if found else error(404, f"No schema {schema_id}.")


@scim_view
def resource_types(request, actor, type_id=None):
    if request.method != "GET":
        return error(405, "Use GET.")
    items = _resource_types(request)
    if type_id is None:
        return _json(_discovery_list(items))
    found = next((t for t in items if t["id"] == type_id), None)
    return _json(found) if found else error(404, f"No resource type {type_id}.")


@csrf_exempt
def not_found(request, rest=""):
    return error(404, "No such SCIM endpoint.")


