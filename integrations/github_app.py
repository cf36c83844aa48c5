"""Countersign as a GitHub App (issue 16, item 2): the App's JWT, its installation tokens, and the
one call it makes on a deployment's behalf (``review_custom_deployment_protection_rule``).

- The App authenticates with a JWT signed RS256 by its private key (``iss`` = the App id, ``iat``
  a minute in the past against clock drift, ``exp`` nine minutes ahead: GitHub refuses more than
  ten) — ``Authorization: Bearer <jwt>``, for the ``/app/...`` endpoints only.
- ``POST /app/installations/{installation_id}/access_tokens`` gives an installation token (an hour);
  it is kept in this process until a minute before it expires.
- Everything else is called with ``Authorization: Bearer <installation token>``.

The base URL is ``COUNTERSIGN_GITHUB_API_URL`` (``https://api.github.com``; GitHub Enterprise
Server: ``https://<host>/api/v3``). The installation token is sent only to URLs under it: a
callback URL anywhere else is refused before any request is made.
"""
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import requests
from django.conf import settings

API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"
USER_AGENT = "Countersign (deployment protection rule)"
JWT_BACKDATE_SECONDS = 60
JWT_LIFETIME_SECONDS = 9 * 60
TOKEN_MARGIN = timedelta(minutes=1)

_tokens: dict[tuple[str, int, str], tuple[str, datetime]] = {}
_lock = threading.Lock()


class NotConfigured(Exception):
    """The App id or private key is missing: nothing can be answered until an operator sets them."""


class Unavailable(Exception):
    """GitHub did not take the call (unreachable, timed out, 5xx, 429, or refused our credentials):
    tried again later."""


class Refused(Exception):
    """GitHub answered 4xx to a well-formed call (e.g. the job is no longer waiting): not retried."""

    def __init__(self, status: int, message: str):
        super().__init__(f"GitHub answered {status}: {message}")
        self.status = status


class UntrustedUrl(Exception):
    """A callback URL outside the configured API (the installation token is never sent there)."""


@dataclass(frozen=True)
class App:
    app_id: str
    private_key: str
    api_url: str


def app() -> App:
    key = settings.COUNTERSIGN_GITHUB_PRIVATE_KEY
    if not key and settings.COUNTERSIGN_GITHUB_PRIVATE_KEY_FILE:
        try:
            key = Path(settings.COUNTERSIGN_GITHUB_PRIVATE_KEY_FILE).read_text()
        except OSError as exc:
            raise NotConfigured(f"COUNTERSIGN_GITHUB_PRIVATE_KEY_FILE cannot be read ({exc.strerror}).") from None
    if not settings.COUNTERSIGN_GITHUB_APP_ID or not key:
        raise NotConfigured("Set COUNTERSIGN_GITHUB_APP_ID and COUNTERSIGN_GITHUB_PRIVATE_KEY (or _FILE).")
    return App(str(settings.COUNTERSIGN_GITHUB_APP_ID), key, settings.COUNTERSIGN_GITHUB_API_URL.rstrip("/"))


def app_jwt(config: App, *, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time()) - JWT_BACKDATE_SECONDS
    claims = {"iat": issued, "exp": issued + JWT_BACKDATE_SECONDS + JWT_LIFETIME_SECONDS, "iss": config.app_id}
    return jwt.encode(claims, config.private_key, algorithm="RS256")


def _headers(authorization: str) -> dict:
    return {"Accept": ACCEPT, "X-GitHub-Api-Version": API_VERSION, "User-Agent": USER_AGENT,
            "Authorization": authorization}


def _post(url: str, authorization: str, body: dict) -> requests.Response:
    try:
        response = requests.post(url, json=body, headers=_headers(authorization), allow_redirects=False,
                                 timeout=settings.COUNTERSIGN_GITHUB_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise Unavailable(f"GitHub is unreachable ({exc.__class__.__name__}).") from None
    if response.status_code >= 500 or response.status_code in (401, 429) or 300 <= response.status_code < 400:
        if response.status_code == 401:
            forget_tokens()  # a revoked or expired installation token: a new one next time
        raise Unavailable(f"GitHub answered {response.status_code}.")
    return response


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:300]
    except (ValueError, AttributeError):
        return response.text[:300]


# What the token is asked for: no more than the callback needs (docs/integrations.md: the App's permissions).
TOKEN_PERMISSIONS = {"actions": "read", "deployments": "write"}


def installation_token(config: App, installation_id: int, repository: str) -> str:
    """An installation token for ``installation_id``, narrowed to ``repository`` (owner/name) and
    to ``TOKEN_PERMISSIONS``; kept in this process until a minute before it expires."""
    key, now = (config.api_url, int(installation_id), repository.lower()), datetime.now(dt_timezone.utc)
    with _lock:
        cached = _tokens.get(key)
        if cached and cached[1] - TOKEN_MARGIN > now:
            return cached[0]
    response = _post(f"{config.api_url}/app/installations/{int(installation_id)}/access_tokens",
                     f"Bearer {app_jwt(config)}",
                     {"repositories": [repository.split("/", 1)[-1]], "permissions": TOKEN_PERMISSIONS})
    if response.status_code != 201:
        raise Refused(response.status_code, _message(response))
    try:
        data = response.json()
        token = str(data["token"])
        expires = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        raise Unavailable("GitHub's installation token answer was not understood.") from None
    with _lock:
        _tokens[key] = (token, expires)
    return token


def forget_tokens() -> None:
    with _lock:
        _tokens.clear()


def callback_path(config: App, url: str, repository: str) -> str:
    """The callback URL's path, once it is known to be this repository's
    ``/repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule`` under the API."""
    base, given = urlsplit(config.api_url), urlsplit(url)
    prefix = f"{base.path.rstrip('/')}/repos/{repository}/actions/runs/"
    run = given.path[len(prefix):].removesuffix("/deployment_protection_rule") if given.path.startswith(prefix) else ""
    if (given.scheme, given.netloc.lower()) != (base.scheme, base.netloc.lower()) or given.query or given.fragment \
            or not run.isdigit() or not given.path.endswith("/deployment_protection_rule"):
        raise UntrustedUrl(f"The callback URL is not {repository}'s deployment protection rule under "
                           f"{config.api_url}.")
    return given.path


def review(config: App, *, installation_id: int, callback_url: str, repository: str, environment_name: str,
           comment: str, state: str | None = None) -> None:
    """Answer the waiting job: ``state`` ``approved`` or ``rejected``, or (None) only a status
    comment that keeps it waiting. Raises ``UntrustedUrl``, ``Unavailable`` or ``Refused``."""
    callback_path(config, callback_url, repository)
    if not installation_id:
        raise Refused(400, "the event names no App installation to answer as")
    body = {"environment_name": environment_name, "comment": comment}
    if state is not None:
        body["state"] = state
    token = installation_token(config, installation_id, repository)
    response = _post(callback_url, f"Bearer {token}", body)
    if response.status_code != 204:
        raise Refused(response.status_code, _message(response))
