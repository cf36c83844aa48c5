"""Real payloads nobody here wrote: ``@octokit/webhooks-examples`` (pinned in package.json and
package-lock.json, installed by ``make test``; installed here with ``npm ci`` when missing), and
GitLab's documented examples vendored under tests/fixtures/gitlab (see SOURCE.md there)."""
import copy
import functools
import hashlib
import hmac
import json
import shutil
import subprocess
import uuid

import pytest
from django.conf import settings

EXAMPLES = settings.BASE_DIR / "node_modules" / "@octokit" / "webhooks-examples" / "api.github.com" / "index.json"
GITLAB_FIXTURES = settings.BASE_DIR / "tests" / "fixtures" / "gitlab"
GITHUB_URL = "/api/v1/integrations/github/webhook"
GITLAB_URL = "/api/v1/integrations/gitlab/webhook"
SECRET = "It's a Secret to Everybody"


@functools.cache
def _index() -> dict[str, list[dict]]:
    if not EXAMPLES.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed: cannot install @octokit/webhooks-examples (package.json)")
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],  # noqa: S603,S607
                       cwd=settings.BASE_DIR, check=True, capture_output=True)
    return {entry["name"]: entry["examples"] for entry in json.loads(EXAMPLES.read_text())}


def examples(event: str) -> list[dict]:
    return copy.deepcopy(_index()[event])


def example(event: str, **match) -> dict:
    return next(e for e in examples(event) if all(e.get(k) == v for k, v in match.items()))


def push_with_commits() -> dict:
    return next(e for e in examples("push") if e["commits"])


def gitlab_example(name: str) -> dict:
    return json.loads((GITLAB_FIXTURES / name).read_text())


def sign(body: bytes, secret: str = SECRET) -> str:
    """As GitHub signs: HMAC-SHA256 of the raw body with the webhook secret, hex, ``sha256=`` first."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_github(client, event: str, payload: dict, *, secret: str = SECRET, delivery: str | None = None,
                signature: str | None = None):
    body = json.dumps(payload).encode()
    headers = {"HTTP_X_GITHUB_EVENT": event, "HTTP_X_GITHUB_DELIVERY": delivery or str(uuid.uuid4()),
               "HTTP_X_HUB_SIGNATURE_256": signature if signature is not None else sign(body, secret)}
    return client.generic("POST", GITHUB_URL, body, content_type="application/json", **headers)


def post_gitlab(client, event: str, payload: dict, *, token: str = SECRET, delivery: str | None = None):
    body = json.dumps(payload).encode()
    headers = {"HTTP_X_GITLAB_EVENT": event, "HTTP_X_GITLAB_EVENT_UUID": delivery or str(uuid.uuid4()),
               "HTTP_X_GITLAB_TOKEN": token}
    return client.generic("POST", GITLAB_URL, body, content_type="application/json", **headers)
