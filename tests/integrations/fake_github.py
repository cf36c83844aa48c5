"""A fake GitHub REST API on 127.0.0.1 that holds Countersign to GitHub's official OpenAPI
description (``@octokit/openapi``, pinned in package.json and package-lock.json).

Every request is matched to a documented operation by method and path template; its path
parameters and JSON body are validated against the operation's schemas (``$ref``s resolved,
OpenAPI's ``nullable`` read, and no property the schema does not name); its headers are checked
as GitHub checks them (a ``User-Agent``, ``Accept: application/vnd.github+json``, a known
``X-GitHub-Api-Version``) and its credentials as GitHub's would be: a JWT signed RS256 by the
App's key, with GitHub's limits on ``iat``/``exp``, for ``/app/...``; an installation token this
fake issued, unexpired, for a repository and permissions it was issued for, anywhere else. Anything
else — an undocumented path, a body the schema refuses, a wrong credential, an operation this fake
does not play — is answered 4xx *and* kept in ``errors``, which the fixture asserts is empty.

What it plays: ``apps/create-installation-access-token`` and ``actions/review-custom-gates-for-run``
for runs registered as waiting (``wait``); a decided run takes no further review (422, an error).
"""
import copy
import functools
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import jwt
from django.conf import settings

SPECS = settings.BASE_DIR / "node_modules" / "@octokit" / "openapi" / "generated"
API_VERSIONS = {"2022-11-28"}  # the REST API versions GitHub documents (docs.github.com/rest/about-the-rest-api)


@functools.cache
def spec(name: str = "api.github.com") -> dict:
    path = SPECS / f"{name}.json"
    if not path.exists():
        import shutil
        import subprocess

        import pytest

        if shutil.which("npm") is None:
            pytest.skip("npm is not installed: cannot install @octokit/openapi (package.json)")
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],  # noqa: S603,S607
                       cwd=settings.BASE_DIR, check=True, capture_output=True)
    return json.loads(path.read_text())


def _resolve(document: dict, node, *, strict: bool, depth: int = 0):
    """An OpenAPI 3.0 schema as a self-contained JSON Schema (draft 4): refs inlined, ``nullable``
    as a null type, and (``strict``) objects closed to properties they do not name."""
    if depth > 40:
        return {}
    if isinstance(node, list):
        return [_resolve(document, item, strict=strict, depth=depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _resolve(document, target, strict=strict, depth=depth + 1)
    out = {}
    for key, value in node.items():
        if key in ("example", "examples", "description", "x-github", "x-octokit"):
            continue
        if key == "allOf":  # members of allOf are read together: none of them may close the object alone
            out[key] = [_resolve(document, v, strict=False, depth=depth + 1) for v in value]
        elif key == "properties":
            out[key] = {name: _resolve(document, v, strict=strict, depth=depth + 1) for name, v in value.items()}
        else:
            out[key] = _resolve(document, value, strict=strict, depth=depth + 1)
    if out.pop("nullable", False):
        out = {"anyOf": [out, {"type": "null"}]}
    elif strict and "properties" in out and "additionalProperties" not in out and out.get("type", "object") == "object":
        out["additionalProperties"] = False
    return out


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern
    definition: dict

    @property
    def operation_id(self) -> str:
        return self.definition["operationId"]


@functools.cache
def operations(name: str) -> tuple[Operation, ...]:
    found = []
    for template, item in spec(name)["paths"].items():
        regex = "^" + re.sub(r"\\\{(\w[\w-]*)\\\}", lambda m: f"(?P<{m[1].replace('-', '_')}>[^/]+)",
                             re.escape(template)) + "$"
        for method, definition in item.items():
            if method in ("get", "post", "put", "patch", "delete", "head"):
                found.append(Operation(method.upper(), template, re.compile(regex), definition))
    # Literal segments before parameters: /repos/{owner}/{repo}/x beats /repos/{owner}/{repo}/{path}.
    return tuple(sorted(found, key=lambda op: (op.template.count("{"), op.template)))


def app_key_pair() -> tuple[str, str]:
    """A GitHub App's RSA key (PEM): the private half for Countersign's settings, the public half
    for the fake to check the App's JWTs with."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class Refusal(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Installation:
    id: int
    repositories: set[str]  # owner/name
    permissions: dict[str, str]


@dataclass
class Call:
    operation_id: str
    method: str
    path: str
    headers: dict
    body: object
    status: int
    token: str = ""
    auth_kind: str = ""


@dataclass
class FakeGitHub:
    """Start with ``start()``; ``url`` is its API base (``/api/v3`` under it for GHES)."""

    app_id: str
    public_key: str
    spec_name: str = "api.github.com"
    installations: dict[int, Installation] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unavailable: int = 0  # answer this many requests 503 before playing GitHub again
    waiting: dict[tuple[str, int, str], str] = field(default_factory=dict)  # (repo, run, env) -> waiting|approved|rejected
    comments: list[dict] = field(default_factory=list)
    tokens: dict[str, dict] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return "/api/v3" if self.spec_name.startswith("ghes") else ""

    def start(self) -> "FakeGitHub":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                fake.serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if not getattr(self, "stopped", False):
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.prefix}"

    def callback_url(self, repository: str, run_id: int) -> str:
        return f"{self.url}/repos/{repository}/actions/runs/{run_id}/deployment_protection_rule"

    def wait(self, repository: str, run_id: int, environment: str) -> str:
        """A job of run ``run_id`` now waits on ``environment``; returns the event's callback URL."""
        self.waiting[(repository.lower(), run_id, environment)] = "waiting"
        return self.callback_url(repository, run_id)

    # --- serving ---------------------------------------------------------------------------------

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = handler.path.split("?", 1)[0]
        call = Call("", handler.command, path, dict(handler.headers.items()), None, 0)
        try:
            with self._lock:
                if self.unavailable:
                    self.unavailable -= 1
                    raise Refusal(503, "Service unavailable (the test says GitHub is down)")
                status, body = self._play(handler, call, path, raw)
        except Refusal as refusal:
            status, body = refusal.status, {"message": str(refusal), "documentation_url": "fake"}
            if status != 503:
                self.errors.append(f"{handler.command} {path}: {refusal.status} {refusal}")
        call.status = status
        with self._lock:
            self.calls.append(call)
        data = b"" if status == 204 else json.dumps(body).encode()
        handler.send_response(status)
        if data:
            handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _match(self, method: str, path: str) -> tuple[Operation, dict]:
        if not path.startswith(self.prefix + "/"):
            raise Refusal(404, f"{path} is not under the API's base {self.prefix or '/'}")
        relative = path[len(self.prefix):]
        for operation in operations(self.spec_name):
            found = operation.pattern.match(relative)
            if found and operation.method == method:
                return operation, found.groupdict()
        raise Refusal(404, f"{method} {relative} is not an operation of GitHub's OpenAPI description ({self.spec_name})")

    def _parameters(self, operation: Operation, values: dict) -> dict:
        document = spec(self.spec_name)
        typed = {}
        for parameter in operation.definition.get("parameters", []):
            parameter = _resolve(document, parameter, strict=False)
            if parameter["in"] != "path":
                continue
            name, schema = parameter["name"], parameter.get("schema", {})
            value = values.get(name.replace("-", "_"), "")
            if schema.get("type") == "integer":
                if not value.isdigit():
                    raise Refusal(404, f"path parameter {name}={value!r} is not an integer")
                value = int(value)
            typed[name] = value
        return typed

    def _body(self, operation: Operation, handler, raw: bytes):
        request_body = operation.definition.get("requestBody")
        if request_body is None:
            if raw:
                raise Refusal(400, f"{operation.operation_id} takes no body")
            return None
        if not raw:
            if request_body.get("required"):
                raise Refusal(400, f"{operation.operation_id} requires a body")
            return None
        if not handler.headers.get("Content-Type", "").startswith("application/json"):
            raise Refusal(415, "the body must be application/json")
        try:
            body = json.loads(raw)
        except ValueError:
            raise Refusal(400, "Problems parsing JSON") from None
        schema = _resolve(spec(self.spec_name), request_body["content"]["application/json"]["schema"], strict=True)
        errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(body), key=lambda e: list(e.path))
        if errors:
            raise Refusal(422, f"body refused by {operation.operation_id}'s schema: "
                          + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5]))
        return body

    def _authorization(self, handler) -> tuple[str, str]:
        scheme, _, credential = handler.headers.get("Authorization", "").partition(" ")
        if not credential:
            raise Refusal(401, "Requires authentication")
        return scheme.lower(), credential

    def _app_jwt(self, handler) -> dict:
        scheme, credential = self._authorization(handler)
        if scheme != "bearer":
            raise Refusal(401, "A JSON web token must be sent as 'Authorization: Bearer <jwt>'")
        try:
            claims = jwt.decode(credential, self.public_key, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]}, leeway=0)
        except jwt.PyJWTError as exc:
            raise Refusal(401, f"A JSON web token could not be decoded ({exc})") from None
        now = datetime.now(dt_timezone.utc).timestamp()
        if str(claims["iss"]) != self.app_id:
            raise Refusal(401, "'iss' is not this App's id")
        if claims["iat"] > now + 1:
            raise Refusal(401, "'Issued at' claim ('iat') must be an Integer representing a time in the past")
        if claims["exp"] - claims["iat"] > 600 or claims["exp"] > now + 600:
            raise Refusal(401, "'Expiration time' claim ('exp') is too far in the future")
        return claims

    def _installation_token(self, handler, repository: str, needs: dict[str, str]) -> str:
        scheme, credential = self._authorization(handler)
        if scheme not in ("bearer", "token"):
            raise Refusal(401, "Bad credentials")
        issued = self.tokens.get(credential)
        if issued is None or issued["expires_at"] <= datetime.now(dt_timezone.utc):
            raise Refusal(401, "Bad credentials")
        if repository.lower() not in issued["repositories"]:
            raise Refusal(404, "Not Found (the token is not for this repository)")
        for permission, level in needs.items():
            granted = issued["permissions"].get(permission)
            if granted is None or (level == "write" and granted != "write"):
                raise Refusal(403, f"Resource not accessible by integration (needs {permission}: {level})")
        return credential

    def _play(self, handler, call: Call, path: str, raw: bytes):
        operation, values = self._match(handler.command, path)
        call.operation_id = operation.operation_id
        parameters = self._parameters(operation, values)
        call.body = body = self._body(operation, handler, raw)
        if not handler.headers.get("User-Agent"):
            raise Refusal(403, "Request forbidden by administrative rules. Please make sure your request has a "
                          "User-Agent header")
        if "application/vnd.github+json" not in handler.headers.get("Accept", ""):
            raise Refusal(415, "Accept: application/vnd.github+json is what GitHub documents")
        version = handler.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            raise Refusal(400, f"API version {version!r} is not supported")
        if operation.operation_id == "apps/create-installation-access-token":
            self._app_jwt(handler)
            call.auth_kind = "jwt"
            return self._create_token(operation, parameters["installation_id"], body or {})
        if operation.operation_id == "actions/review-custom-gates-for-run":
            repository = f"{parameters['owner']}/{parameters['repo']}"
            call.token = self._installation_token(handler, repository, {"deployments": "write"})
            call.auth_kind = "installation"
            return self._review(repository, parameters["run_id"], body)
        raise Refusal(501, f"{operation.operation_id} is documented but this fake does not play it")

    def _create_token(self, operation: Operation, installation_id: int, body: dict):
        installation = self.installations.get(installation_id)
        if installation is None:
            raise Refusal(404, "Not Found (no such installation of this App)")
        names = {r.split("/", 1)[1].lower(): r.lower() for r in installation.repositories}
        asked = [n.lower() for n in body.get("repositories", [])]
        if any(n not in names for n in asked):
            raise Refusal(422, "There is at least one repository that does not exist or is not accessible")
        permissions = body.get("permissions") or dict(installation.permissions)
        for permission, level in permissions.items():
            granted = installation.permissions.get(permission)
            if granted is None or (level == "write" and granted != "write"):
                raise Refusal(422, f"The permissions requested are not granted to this installation ({permission})")
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = datetime.now(dt_timezone.utc).replace(microsecond=0) + timedelta(hours=1)
        self.tokens[token] = {"installation": installation_id, "expires_at": expires, "permissions": permissions,
                              "repositories": {names[n] for n in asked} if asked else set(names.values())}
        answer = {"token": token, "expires_at": expires.isoformat().replace("+00:00", "Z"),
                  "permissions": permissions, "repository_selection": "selected" if asked else "all"}
        schema = _resolve(spec(self.spec_name), operation.definition["responses"]["201"]["content"]
                          ["application/json"]["schema"], strict=False)
        jsonschema.Draft4Validator(schema).validate(answer)  # the fake's own answer is GitHub's shape
        return 201, copy.deepcopy(answer)

    def _review(self, repository: str, run_id: int, body: dict):
        key = (repository.lower(), run_id, body["environment_name"])
        state = self.waiting.get(key)
        if state is None:
            raise Refusal(404, f"No deployment of run {run_id} waits on {body['environment_name']!r}")
        if state != "waiting":
            raise Refusal(422, f"The protection rule of run {run_id} on {body['environment_name']!r} is already {state}")
        self.comments.append({"repository": repository, "run_id": run_id, **body})
        if "state" in body:
            self.waiting[key] = body["state"]
        return 204, None
