"""The story CI tells: open and submit a change on staging, a reviewer approves it over the API,
operations asks the gate, deploys and reports the outcome."""
from audit.models import AuditEvent
from releases.models import Approval, ChangeRequest
from tests.api_releases.shortcuts import CHANGES, change_url, deployment_url

ARTIFACT = "registry.example.com/payments-api@sha256:" + "7e5d" * 16


def test_a_change_goes_from_commit_to_staging_through_the_api(demo, api_as):
    ci_as_dev, reviewer, pipeline = api_as(demo.dev), api_as(demo.rev), api_as(demo.ops)

    created = ci_as_dev.post(CHANGES, {
        "title": "Cache card BIN lookups", "description": "Cuts p99 latency of authorisations.",
        "team": "payments", "environment": "staging", "change_type": "normal", "risk": "medium",
        "artifact": ARTIFACT, "contributors": ["dev2"], "ticket_url": "https://tickets.example.com/PAY-204",
    }, format="json")
    assert created.status_code == 201
    change = created.json()
    assert change["state"] == "draft" and change["author"] == "dev" and change["contributors"] == ["dev2"]

    submitted = ci_as_dev.post(change_url(change["id"], "submit"))
    assert submitted.status_code == 200
    assert submitted.json()["state"] == "pending" and submitted.json()["submitted_at"]

    approval = reviewer.post(change_url(change["id"], "approve"),
                             {"revision": submitted.json()["revision"], "comment": "Cache keys look right."},
                             format="json")
    assert approval.status_code == 200
    assert approval.json()["state"] == "approved"
    [decision] = approval.json()["approvals"]
    assert decision["reviewer"] == "rev" and decision["via"] == "api" and decision["revision"] == 1
    assert decision["decision"] == "approved" and decision["stale"] is False

    gate = pipeline.get(change_url(change["id"], "gate"), {"action": "deploy"})
    assert gate.status_code == 200
    assert gate.json()["allowed"] is True and gate.json()["reasons"] == []

    started = pipeline.post(change_url(change["id"], "deployments"),
                            {"pipeline_url": "https://ci.example.com/payments/run/981"}, format="json")
    assert started.status_code == 201
    deployment = started.json()
    assert deployment["state"] == "running" and deployment["deployer"] == "ops"
    assert deployment["change_request"] == change["id"] and deployment["started_at"]
    assert deployment["artifact"] == ARTIFACT and deployment["environment"] == "staging"
    assert pipeline.get(change_url(change["id"])).json()["state"] == "deploying"

    finished = pipeline.post(deployment_url(deployment["id"], "finish"),
                             {"outcome": "succeeded", "notes": "Rolled out to 3/3 pods."}, format="json")
    assert finished.status_code == 200
    assert finished.json()["state"] == "succeeded" and finished.json()["finished_at"]

    final = ci_as_dev.get(change_url(change["id"])).json()
    assert final["state"] == "deployed" and final["deployed_at"]
    actions = list(AuditEvent.objects.filter(data__change_request=change["id"]).order_by("pk")
                   .values_list("action", "actor__username"))
    assert actions == [
        ("change_request.created", "dev"), ("change_request.submitted", "dev"), ("change_request.approved", "rev"),
        ("deployment.started", "ops"), ("deployment.succeeded", "ops"),
    ]
    assert Approval.objects.get(change_request_id=change["id"]).via == Approval.Via.API


def test_a_failed_rollout_leaves_the_change_failed(demo, api_as):
    dev, ops = api_as(demo.dev), api_as(demo.ops)
    change = dev.post(CHANGES, {"title": "Shard ledger writes", "team": "payments", "environment": "staging",
                                "artifact": "ledger:5.0.0"}, format="json").json()
    dev.post(change_url(change["id"], "submit"))
    api_as(demo.rev).post(change_url(change["id"], "approve"), {"revision": change["revision"]}, format="json")
    deployment = ops.post(change_url(change["id"], "deployments"), {}, format="json").json()

    response = ops.post(deployment_url(deployment["id"], "finish"), {"outcome": "failed", "notes": "Health check."},
                        format="json")

    assert response.status_code == 200 and response.json()["state"] == "failed"
    assert ChangeRequest.objects.get(pk=change["id"]).state == ChangeRequest.State.FAILED
