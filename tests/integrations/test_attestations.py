"""Issue 16, item 4: signed approval attestations. Verified with an independent implementation
(securesystemslib's DSSE code) and with openssl, as docs/integrations.md shows by hand."""
import base64
import copy
import json
import shutil
import subprocess
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.management import CommandError, call_command
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from audit import signing
from core.errors import Denied
from integrations import attestation_verify
from integrations.models import Attestation
from releases import services
from releases.models import ChangeRequest
from tests.releases import stories

DIGEST = "registry.example.com/payments-api@sha256:" + "ab" * 32


def independent_key() -> SSlibKey:
    raw = signing.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SSlibKey(signing.fingerprint(), "ed25519", "ed25519", {"public": raw.hex()})


def independently_verified(envelope: dict) -> dict:
    """securesystemslib checks the DSSE signature (PAE and Ed25519 its own way); returns the statement."""
    parsed = Envelope.from_dict(copy.deepcopy(envelope))  # from_dict consumes the dict it reads
    parsed.verify([independent_key()], 1)
    return json.loads(parsed.payload)


def statement_of(envelope: dict) -> dict:
    return json.loads(base64.b64decode(envelope["payload"]))


@pytest.fixture
def approved(demo, now):
    return stories.approved_in_production(demo, now)


def test_a_production_approval_issues_an_attestation_that_verifies_independently(demo, now, approved):
    assert approved.state == ChangeRequest.State.APPROVED
    attestation = Attestation.objects.get(change_request=approved)
    assert attestation.kind == "approval"
    statement = independently_verified(attestation.envelope)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    name, digest = approved.artifact.split("@sha256:")
    assert statement["subject"] == [{"name": name, "digest": {"sha256": digest}}]
    predicate = statement["predicate"]
    assert predicate["changeRequest"]["id"] == approved.pk
    assert predicate["changeRequest"]["revision"] == approved.revision
    assert predicate["decision"] == "approved"
    assert predicate["environment"] == {"slug": "production", "tier": "production"}
    assert [a["username"] for a in predicate["approvers"]] == ["rev", "rev2"]
    assert all("reviewer" in a["roles"] and a["approvedAt"] for a in predicate["approvers"])
    assert predicate["policy"]["id"] == demo.production.approval_policy.pk
    assert predicate["policy"]["history_id"] and len(predicate["policy"]["sha256"]) == 64
    assert predicate["expiresAt"] > predicate["issuedAt"]
    assert attestation_verify.verify(attestation.envelope, signing.public_key_pem().encode(),
                                     now=now, digest=digest).status == "valid"


def test_staging_approvals_are_not_attested(demo, now):
    cr = stories.approved_in_staging(demo, now)
    assert not Attestation.objects.filter(change_request=cr).exists()


def test_deployment_start_issues_a_second_attestation_served_by_the_api(demo, now, approved, api_as):
    deployment = services.deployment_start(actor=demo.ops, change_request=approved, at=now)
    kinds = list(Attestation.objects.filter(change_request=approved).order_by("issued_at", "id")
                 .values_list("kind", flat=True))
    assert kinds == ["approval", "deployment"]
    response = api_as(demo.dev).get(f"/api/v1/change-requests/{approved.pk}/attestation/")
    assert response.status_code == 200
    statement = independently_verified(response.json())
    assert statement["predicate"]["deployment"]["id"] == deployment.pk
    assert statement["predicate"]["deployment"]["deployer"] == "ops"
    assert response["X-Countersign-Attestation-Status"] == "valid"


def test_the_api_answers_404_without_an_attestation_or_out_of_view(demo, now, approved, api_as):
    staging = stories.approved_in_staging(demo, now)
    assert api_as(demo.dev).get(f"/api/v1/change-requests/{staging.pk}/attestation/").status_code == 404
    assert api_as(demo.idev).get(f"/api/v1/change-requests/{approved.pk}/attestation/").status_code == 404
    assert api_as(demo.dev).get("/api/v1/change-requests/99999999999999999999/attestation/").status_code == 404


@pytest.mark.parametrize("where", ["payload", "signature"])
def test_a_changed_byte_fails_verification(approved, where):
    envelope = dict(Attestation.objects.get(change_request=approved).envelope)
    field = envelope["payload"] if where == "payload" else envelope["signatures"][0]["sig"]
    raw = bytearray(base64.b64decode(field))
    raw[len(raw) // 2] ^= 0x01
    changed = base64.b64encode(bytes(raw)).decode()
    if where == "payload":
        envelope["payload"] = changed
    else:
        envelope["signatures"] = [{**envelope["signatures"][0], "sig": changed}]
    with pytest.raises(VerificationError):
        Envelope.from_dict(copy.deepcopy(envelope)).verify([independent_key()], 1)
    assert attestation_verify.verify(envelope, signing.public_key_pem().encode()).status == "bad_signature"


def test_an_expired_attestation_is_reported_as_expired(tmp_path, approved):
    attestation = Attestation.objects.get(change_request=approved)
    independently_verified(attestation.envelope)  # the signature is still good: expiry is in the statement
    path = tmp_path / "attestation.json"
    path.write_text(json.dumps(attestation.envelope))
    later = attestation.expires_at + timedelta(seconds=1)
    assert attestation_verify.verify(attestation.envelope, signing.public_key_pem().encode(),
                                     now=later).status == "expired"
    with pytest.raises(CommandError, match="^expired"):
        call_command("attestation_verify", str(path), "--at", later.isoformat())
    call_command("attestation_verify", str(path), "--at", (later - timedelta(seconds=2)).isoformat())


def test_the_api_reports_an_expired_attestation_as_expired(demo, approved, api_as):
    Attestation.objects.filter(change_request=approved).update(expires_at=datetime(2000, 1, 1).astimezone())
    response = api_as(demo.dev).get(f"/api/v1/change-requests/{approved.pk}/attestation/")
    assert response["X-Countersign-Attestation-Status"] == "expired"


def test_an_approval_ttl_shortens_the_expiry(demo, now):
    demo.production.approval_policy.__class__.objects.filter(pk=demo.production.approval_policy.pk).update(
        approval_ttl_hours=2)
    cr = stories.approved_in_production(demo, now)
    attestation = Attestation.objects.get(change_request=cr)
    first_approval = cr.approvals.order_by("created_at").first()
    assert attestation.expires_at == first_approval.created_at + timedelta(hours=2)


def documented_script() -> str:
    text = (settings.BASE_DIR / "docs" / "integrations.md").read_text()
    block = text.split("<!-- verify-by-hand:start -->")[1].split("<!-- verify-by-hand:end -->")[0]
    return block.split("```sh")[1].split("```")[0]


@pytest.mark.skipif(not all(shutil.which(t) for t in ("openssl", "jq", "sh")), reason="openssl or jq missing")
def test_openssl_verifies_it_by_hand_as_documented(tmp_path, approved):
    """docs/integrations.md's "Verifying one by hand", run as written; then with one byte changed."""
    envelope = Attestation.objects.get(change_request=approved).envelope
    (tmp_path / "countersign.pub").write_text(signing.public_key_pem())
    script = documented_script()

    def run(env: dict):
        (tmp_path / "att.json").write_text(json.dumps(env))
        return subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,  # noqa: S603,S607
                              check=False)

    result = run(envelope)
    assert result.returncode == 0, result.stderr
    assert "Signature Verified Successfully" in result.stdout
    assert approved.artifact.split("sha256:")[1] in result.stdout and "production" in result.stdout
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[payload.index(b'"approved"') + 1] ^= 0x01  # "approved" -> "cpproved"
    changed = {**envelope, "payload": base64.b64encode(bytes(payload)).decode()}
    result = run(changed)
    assert result.returncode != 0 and "Signature Verified Successfully" not in result.stdout
    assert "Signature Verification Failure" in result.stdout + result.stderr


# --- Production artifacts are pinned by digest -----------------------------------------------------


def test_a_tag_only_production_artifact_is_refused_at_submit(demo, now, nothing_written):
    cr = stories.draft(demo, now, environment=demo.production, artifact="registry.example.com/payments-api:2.0")
    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_submit(actor=demo.dev, change_request=cr, at=now)
    assert "artifact_not_pinned" in refused.value.codes


def test_a_digest_pinned_production_artifact_is_accepted_and_staging_takes_tags(demo, now):
    pinned = stories.draft(demo, now, environment=demo.production, artifact=DIGEST)
    assert services.change_request_submit(actor=demo.dev, change_request=pinned, at=now).state == "pending"
    tag = stories.draft(demo, now, environment=demo.staging, artifact="payments-api:2.0")
    assert services.change_request_submit(actor=demo.dev, change_request=tag, at=now).state == "pending"


def test_the_api_refuses_it_with_the_reason_code(demo, api_as):
    client = api_as(demo.dev)
    created = client.post("/api/v1/change-requests/", {
        "title": "Tag only", "team": "payments", "environment": "production", "artifact": "payments-api:latest",
    }, format="json")
    assert created.status_code == 201
    response = client.post(f"/api/v1/change-requests/{created.json()['id']}/submit/", {}, format="json")
    assert response.status_code == 403
    assert "artifact_not_pinned" in [r["code"] for r in response.json()["reasons"]]


def test_an_unpinned_change_already_pending_is_refused_at_approval_in_service_and_portal(demo, now, client_as):
    """A change that went pending before the rule (or was written around the services)."""
    cr = stories.pending_in_production(demo, now)
    ChangeRequest.objects.filter(pk=cr.pk).update(artifact="registry.example.com/payments-api:2.0")
    with pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)
    assert "artifact_not_pinned" in refused.value.codes
    demo.rev.set_password("pw-rev-123")
    demo.rev.save()
    response = client_as(demo.rev).post(f"/changes/{cr.pk}/signoff/", {
        "decision": "approve", "password": "pw-rev-123", "revision": cr.revision, "comment": "",
    })
    assert response.status_code == 403
    assert b"must name its artifact by digest" in response.content


def test_an_unpinned_approved_change_is_refused_at_deploy(demo, now, approved, nothing_written):
    ChangeRequest.objects.filter(pk=approved.pk).update(artifact="registry.example.com/payments-api:2.0")
    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=approved, at=now)
    assert "artifact_not_pinned" in refused.value.codes
