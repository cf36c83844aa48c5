"""Issue 16, item 2: Countersign as a GitHub custom deployment protection rule, against a fake
GitHub on 127.0.0.1 that checks every request against GitHub's OpenAPI description
(``tests/integrations/fake_github.py``). The events are signed as GitHub signs them; their
payload is octokit's ``deployment`` example with the fields of a ``deployment_protection_rule``
event, checked against that event's schema in the same description."""
import base64
import json
import time
import uuid

import jsonschema
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.test import Client

from audit import outbox
from audit.models import Alert, AuditEvent, OutboxMessage
from integrations import github_app, protection
from integrations.models import LinkedRepository, PlatformAccount, ProtectionRequest, SourceLink, WebhookDelivery
from integrations.sources import link_source
from releases import services
from releases.models import ChangeRequest
from tests.integrations import fake_github
from tests.integrations.github import SECRET, examples, post_github
from tests.releases import stories

REPOSITORY = "Codertocat/Hello-World"
APP_ID = "424242"
APP_SECRET = "the App's webhook secret"
INSTALLATION = 1  # the installation id of octokit's example
SHA = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"  # the commit of octokit's deployment example
TOPICS = ("integrations.webhook", protection.TOPIC)


@pytest.fixture(scope="module")
def app_key():
    return fake_github.app_key_pair()


def _fake(app_key, spec_name="api.github.com"):
    fake = fake_github.FakeGitHub(app_id=APP_ID, public_key=app_key[1], spec_name=spec_name)
    fake.installations[INSTALLATION] = fake_github.Installation(
        INSTALLATION, {REPOSITORY, "Codertocat/Other"}, {"actions": "read", "deployments": "write", "metadata": "read"})
    return fake.start()


@pytest.fixture
def github(app_key, settings, monkeypatch, now):
    fake = _fake(app_key)
    settings.COUNTERSIGN_GITHUB_APP_ID = APP_ID
    settings.COUNTERSIGN_GITHUB_PRIVATE_KEY = app_key[0]
    settings.COUNTERSIGN_GITHUB_API_URL = fake.url
    settings.COUNTERSIGN_GITHUB_WEBHOOK_SECRET = APP_SECRET
    monkeypatch.setattr(protection, "_now", lambda: now)  # inside production's deploy window
    github_app.forget_tokens()
    yield fake
    fake.stop()
    github_app.forget_tokens()
    assert fake.errors == [], "Countersign made requests GitHub's OpenAPI description does not allow"


@pytest.fixture
def repository(demo):
    repository = LinkedRepository.objects.create(platform="github", full_name=REPOSITORY, team=demo.payments,
                                                 webhook_secret=SECRET)
    for login, user in (("octo-dev", demo.dev), ("octo-ops", demo.ops), ("octo-rev", demo.rev)):
        PlatformAccount.objects.create(platform="github", login=login, user=user)
    return repository


@pytest.fixture
def change(demo, now, repository):
    """A production change pending its two sign-offs, linked by its author to the commit deployed."""
    cr = stories.pending_in_production(demo, now)
    link_source(actor=demo.dev, change_request=cr, sha=SHA, repository=repository, at=now)
    return cr


def protection_event(fake, *, run_id: int, actor: str, environment: str = "production", sha: str = SHA,
                     callback_url: str | None = None) -> dict:
    """octokit's deployment example (the one with an installation), as a deployment_protection_rule
    event: checked against that event's schema in GitHub's OpenAPI description."""
    base = next(e for e in examples("deployment") if e.get("installation") and e["deployment"]["environment"]
                == "production")
    base["sender"]["login"] = actor
    payload = {
        "action": "requested", "environment": environment, "event": "push", "sha": sha,
        "ref": "refs/heads/master", "deployment": base["deployment"], "pull_requests": [],
        "deployment_callback_url": callback_url or fake.wait(REPOSITORY, run_id, environment),
        "repository": base["repository"], "installation": base["installation"], "sender": base["sender"],
    }
    document = fake_github.spec()
    schema = fake_github._resolve(document, document["components"]["schemas"]
                                  ["webhook-deployment-protection-rule-requested"], strict=False)
    jsonschema.Draft4Validator(schema).validate(payload)
    return payload


def send(payload: dict, *, delivery: str | None = None, secret: str = APP_SECRET):
    return post_github(Client(), "deployment_protection_rule", payload, secret=secret,
                       delivery=delivery or str(uuid.uuid4()))


def work_off() -> list[str]:
    """What the worker does: deliver every due webhook and protection message, until none is left."""
    outcomes = []
    while True:
        due = list(OutboxMessage.objects.filter(topic__in=TOPICS, delivered_at__isnull=True, failed_at__isnull=True,
                                                available_at__lte=protection.timezone.now())
                   .order_by("pk").values_list("pk", flat=True))
        if not due:
            return outcomes
        outcomes += [outbox.deliver(pk) for pk in due]


def reviews(fake) -> list[dict]:
    return [c for c in fake.calls if c.operation_id == "actions/review-custom-gates-for-run"]


def test_a_job_is_rejected_with_reasons_then_another_waits_and_is_approved_after_two_sign_offs(
        demo, now, github, change):
    # The change's author starts the deployment: rejected, with every reason and a link to the change.
    assert send(protection_event(github, run_id=1001, actor="octo-dev")).status_code == 202
    work_off()
    first = github.comments[-1]
    assert first["environment_name"] == "production" and first["state"] == "rejected"
    assert "- author_cannot_deploy: The author of a change may not deploy it." in first["comment"]
    assert "- not_approved: " in first["comment"]
    assert f"/changes/{change.pk}/" in first["comment"]
    assert github.waiting[(REPOSITORY.lower(), 1001, "production")] == "rejected"

    # ops starts it: nothing forbids ops, only approvals are missing, so the job waits with a status.
    send(protection_event(github, run_id=1002, actor="octo-ops"))
    work_off()
    request = ProtectionRequest.objects.get(callback_url__contains="/runs/1002/")
    status = github.comments[-1]
    assert "state" not in status and request.state == "waiting" and request.reasons == ["not_approved"]
    assert "Countersign: Waiting for approvals." in status["comment"] and "Approvals: 0 of 2" in status["comment"]
    assert request.change_request == change and request.deployer == demo.ops

    services.change_request_approve(actor=demo.rev, change_request=change, via="portal", at=now)
    work_off()
    assert "Approvals: 1 of 2" in github.comments[-1]["comment"] and "state" not in github.comments[-1]
    services.change_request_approve(actor=demo.rev2, change_request=change, via="portal", at=now)
    work_off()
    final = github.comments[-1]
    assert final["state"] == "approved" and "Countersign: Approved." in final["comment"]
    assert github.waiting[(REPOSITORY.lower(), 1002, "production")] == "approved"
    request.refresh_from_db()
    assert request.state == "approved" and request.reasons == [] and request.decided_at == now
    assert stories.reload(change).state == ChangeRequest.State.APPROVED

    # Every answer carried an installation token GitHub issued for this repository, asked for with
    # the App's JWT; one token served all four answers.
    calls = reviews(github)
    assert len(calls) == 4 and all(c.status == 204 and c.auth_kind == "installation" for c in calls)
    issued = [c for c in github.calls if c.operation_id == "apps/create-installation-access-token"]
    assert len(issued) == 1 and issued[0].auth_kind == "jwt" and issued[0].status == 201
    assert issued[0].body == {"repositories": ["Hello-World"], "permissions": {"actions": "read",
                                                                                "deployments": "write"}}
    token = github.tokens[calls[-1].token]
    assert token["installation"] == INSTALLATION and token["repositories"] == {REPOSITORY.lower()}
    assert {c.headers["Authorization"] for c in calls} == {f"Bearer {calls[0].token}"}
    answered = AuditEvent.objects.filter(action="deployment.protection_answered").order_by("sequence")
    assert [(e.data["state"], e.data["deployer"]) for e in answered] == [
        ("rejected", "dev"), ("waiting", "ops"), ("waiting", "ops"), ("approved", "ops")]


def test_a_change_rejected_by_a_reviewer_rejects_the_waiting_job(demo, now, github, change):
    send(protection_event(github, run_id=2001, actor="octo-ops"))
    work_off()
    services.change_request_reject(actor=demo.rev, change_request=change, comment="Not this week.", via="portal",
                                   at=now)
    work_off()
    assert github.comments[-1]["state"] == "rejected" and "- not_approved: " in github.comments[-1]["comment"]
    assert ProtectionRequest.objects.get().state == "rejected"


@pytest.mark.parametrize("case, code", [
    ("unknown environment", "environment_unknown"),
    ("actor not mapped", "deployer_unknown"),
    ("no change for the commit", "no_change_request"),
])
def test_what_countersign_cannot_place_is_rejected_with_its_reason(demo, now, github, change, case, code):
    kwargs = {"run_id": 3001, "actor": "octo-ops"}
    if case == "unknown environment":
        kwargs["environment"] = "qa-eu"
    elif case == "actor not mapped":
        kwargs["actor"] = "someone-else"
    else:
        kwargs["sha"] = "1234abcd" * 5
    send(protection_event(github, **kwargs))
    work_off()
    assert github.comments[-1]["state"] == "rejected"
    assert f"- {code}: " in github.comments[-1]["comment"]
    assert ProtectionRequest.objects.get().reasons[0] == code


def test_a_wrong_signature_is_401_nothing_stored_nothing_asked(github, change):
    response = send(protection_event(github, run_id=4001, actor="octo-ops"), secret="not the secret")
    assert response.status_code == 401
    work_off()
    assert (WebhookDelivery.objects.count(), ProtectionRequest.objects.count(), github.calls) == (0, 0, [])


def test_a_replayed_delivery_is_stored_and_answered_once(github, change):
    payload = protection_event(github, run_id=5001, actor="octo-ops")
    assert send(payload, delivery="dpr-1").json()["duplicate"] is False
    assert send(payload, delivery="dpr-1").json()["duplicate"] is True
    work_off()
    assert send(payload, delivery="dpr-1").json()["duplicate"] is True
    work_off()
    assert ProtectionRequest.objects.count() == 1 and len(reviews(github)) == 1


def test_the_repository_secret_signs_too_and_an_unlinked_repository_is_refused(github, change):
    assert send(protection_event(github, run_id=5101, actor="octo-ops"), secret=SECRET).status_code == 202
    other = protection_event(github, run_id=5102, actor="octo-ops")
    other["repository"]["full_name"] = "Codertocat/Other"
    assert send(other).status_code == 401
    work_off()
    assert ProtectionRequest.objects.count() == 1


def _make_due() -> None:
    OutboxMessage.objects.filter(topic=protection.TOPIC, delivered_at__isnull=True).update(
        available_at=protection.timezone.now())


def test_github_down_is_retried_with_backoff_alerted_after_n_failures_then_answered(github, change, settings):
    settings.COUNTERSIGN_GITHUB_ALERT_AFTER_FAILURES = 3
    send(protection_event(github, run_id=6001, actor="octo-ops"))
    github.unavailable = 100
    work_off()
    request = ProtectionRequest.objects.get()
    assert request.failures == 1 and request.state == "waiting" and "503" in request.last_error
    retry = OutboxMessage.objects.get(topic=protection.TOPIC, delivered_at__isnull=True)
    assert retry.available_at > retry.created_at  # backoff, not at once
    assert not Alert.objects.filter(kind="github_protection_unanswered").exists()
    for _ in range(2):
        _make_due()
        work_off()
    request.refresh_from_db()
    assert request.failures == 3
    alert = Alert.objects.get(kind="github_protection_unanswered")
    assert alert.details["protection_request"] == request.pk
    github.unavailable = 0
    _make_due()
    work_off()
    request.refresh_from_db()
    assert (request.failures, request.answered_at is not None) == (0, True)
    assert github.comments[-1]["environment_name"] == "production"


def test_github_unreachable_is_retried_never_a_500(github, change):
    github.stop()  # nothing listens on its port any more: connection refused
    assert send(protection_event(github, run_id=6101, actor="octo-ops")).status_code == 202
    assert work_off() == ["delivered", "delivered"]  # the handler records the failure; it does not raise
    request = ProtectionRequest.objects.get()
    assert (request.state, request.failures) == ("waiting", 1)
    assert "unreachable" in request.last_error
    assert OutboxMessage.objects.filter(topic=protection.TOPIC, delivered_at__isnull=True).count() == 1


def test_a_callback_outside_the_configured_api_never_gets_the_token(app_key, github, change):
    elsewhere = _fake(app_key)
    try:
        send(protection_event(github, run_id=7001, actor="octo-ops",
                              callback_url=elsewhere.wait(REPOSITORY, 7001, "production")))
        work_off()
        assert elsewhere.calls == [] and github.calls == []
        request = ProtectionRequest.objects.get()
        assert request.state == "waiting" and "callback URL" in request.last_error
        assert AuditEvent.objects.get(action="deployment.protection_answered").data["outcome"] == "not_taken"
    finally:
        elsewhere.stop()


def test_github_enterprise_server_under_its_own_base_url(app_key, settings, monkeypatch, demo, now, repository):
    ghes = _fake(app_key, spec_name="ghes-3.19")
    settings.COUNTERSIGN_GITHUB_APP_ID, settings.COUNTERSIGN_GITHUB_PRIVATE_KEY = APP_ID, app_key[0]
    settings.COUNTERSIGN_GITHUB_API_URL, settings.COUNTERSIGN_GITHUB_WEBHOOK_SECRET = ghes.url, APP_SECRET
    monkeypatch.setattr(protection, "_now", lambda: now)
    github_app.forget_tokens()
    try:
        assert ghes.url.endswith("/api/v3")
        cr = stories.approved_in_production(demo, now)
        SourceLink.objects.create(change_request=cr, repository=repository, commit_sha=SHA[:12])
        send(protection_event(ghes, run_id=8001, actor="octo-ops"))
        work_off()
        assert ghes.comments[-1]["state"] == "approved"
        assert ghes.errors == []
    finally:
        ghes.stop()
        github_app.forget_tokens()


def test_the_fake_refuses_what_github_would(app_key, github):
    """The fake can fail a test: an undocumented path, a body its schema refuses, a wrong credential."""
    import requests

    headers = {"Accept": github_app.ACCEPT, "User-Agent": "test", "X-GitHub-Api-Version": github_app.API_VERSION}
    config = github_app.App(APP_ID, app_key[0], github.url)
    assert requests.post(f"{github.url}/app/installations/1/access_token", json={}, headers=headers,
                         timeout=5).status_code == 404
    token = github_app.installation_token(config, INSTALLATION, REPOSITORY)
    url = github.wait(REPOSITORY, 9001, "production")
    bogus = requests.post(url, json={"environment_name": "production", "state": "maybe", "comment": "x"},
                          headers={**headers, "Authorization": f"Bearer {token}"}, timeout=5)
    assert bogus.status_code == 422
    assert requests.post(url, json={"environment_name": "production", "state": "approved"},
                         headers={**headers, "Authorization": f"Bearer {github_app.app_jwt(config)}"},
                         timeout=5).status_code == 401
    no_agent = requests.post(url, json={"environment_name": "production", "comment": "x"},
                             headers={"Authorization": f"Bearer {token}", "Accept": github_app.ACCEPT,
                                      "User-Agent": ""}, timeout=5)
    assert no_agent.status_code == 403
    assert len(github.errors) == 4
    github.errors.clear()


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_app_jwt_claims_and_signature_verify_independently(app_key):
    """Checked with ``cryptography`` alone (RFC 7515 by hand), not with the library that signed it."""
    config = github_app.App(APP_ID, app_key[0], "https://api.github.com")
    before = int(time.time())
    token = github_app.app_jwt(config)
    header, claims, signature = token.split(".")
    public = serialization.load_pem_public_key(app_key[1].encode())
    public.verify(_b64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert json.loads(_b64(header)) == {"alg": "RS256", "typ": "JWT"}
    body = json.loads(_b64(claims))
    assert body["iss"] == APP_ID
    assert before - 61 <= body["iat"] <= before - 59  # backdated a minute against clock drift
    assert 0 < body["exp"] - int(time.time()) <= 600 and body["exp"] - body["iat"] <= 600
    tampered = f"{header}.{claims[:-2]}AA.{signature}"
    with pytest.raises(InvalidSignature):
        public.verify(_b64(tampered.split(".")[2]), ".".join(tampered.split(".")[:2]).encode(), padding.PKCS1v15(),
                      hashes.SHA256())
