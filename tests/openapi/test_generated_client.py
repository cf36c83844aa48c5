"""Issue 19 item 3's acceptance: a client that openapi-python-client (a dev requirement) generates
from ``/api/schema/`` of a live server imports whole, and drives the lifecycle with no hand-written
request: create, submit, approve with the revision, gate, deploy, finish; a grant refused with its
reasons parsed as the shared ``Refusal``; an evidence export polled and downloaded as bytes.

Keys are made through the services (setup); every request after that goes through the client."""
import hashlib
import importlib
import io
import os
import pkgutil
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from governance import services as governance_services
from tests.waiting import wait_for

CONFIG = Path(__file__).with_name("openapi-python-client.yaml")
PACKAGE = "countersign_client"


def generate(url: str, into: Path) -> Path:
    """The client generated from ``url`` into ``into/countersign_client`` (the CLI, as docs/api-clients.md
    shows it); fails the test on any warning the generator prints about a part it had to leave out."""
    cli = Path(sys.executable).with_name("openapi-python-client")
    run = subprocess.run(
        [str(cli), "generate", "--url", url, "--meta", "none", "--config", str(CONFIG),
         "--output-path", str(into / PACKAGE)],
        capture_output=True, text=True, timeout=300, cwd=into,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},  # the schema is fetched from 127.0.0.1 only
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    return into


@pytest.fixture(scope="module")
def client_package(live_server, tmp_path_factory, django_db_blocker):
    """The generated package, imported (every module of it), and removed from ``sys.modules`` after.
    The live server's thread may check its database connection at the request's start (it reads
    nothing for the schema): allowed here, before any test's database fixture."""
    with django_db_blocker.unblock():
        root = generate(f"{live_server.url}/api/schema/", tmp_path_factory.mktemp("generated"))
    sys.path.insert(0, str(root))
    try:
        package = importlib.import_module(PACKAGE)
        modules = {name: importlib.import_module(name)
                   for _, name, _ in pkgutil.walk_packages(package.__path__, f"{PACKAGE}.")}
        yield package, modules
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_every_generated_module_imports(client_package):
    _, modules = client_package
    endpoints = [name for name in modules if ".api." in name and not name.endswith("__init__")]
    assert len(endpoints) >= 40, endpoints
    assert f"{PACKAGE}.models.refusal" in modules and f"{PACKAGE}.models.detail" in modules


def test_the_lifecycle_through_the_generated_client(client_package, live_server, demo, settings, tmp_path,
                                                    monkeypatch):
    settings.EVIDENCE_ROOT = tmp_path / "evidence"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # httpx reads proxies from the environment
    package, modules = client_package
    models = modules[f"{PACKAGE}.models"]

    def api(tag: str, operation: str):
        return modules[f"{PACKAGE}.api.{tag}.{operation}"]

    def as_user(user):
        _, key = governance_services.api_token_create(actor=user, user=user, name="generated client")
        return package.AuthenticatedClient(base_url=live_server.url, token=key, prefix="Token",
                                           raise_on_unexpected_status=True)

    dev, rev, ops, mgr, auditor = (as_user(u) for u in (demo.dev, demo.rev, demo.ops, demo.mgr, demo.auditor))

    created = api("change_requests", "v1_change_requests_create").sync_detailed(client=dev, body=(
        models.ChangeRequestCreateRequest(
            title="Cache card BIN lookups", description="Cuts p99 latency.", team="payments",
            environment="staging", change_type=models.ChangeTypeEnum.NORMAL, risk=models.RiskEnum.MEDIUM,
            artifact="registry.example.com/payments-api@sha256:" + "7e5d" * 16, contributors=["dev2"],
            ticket_url="https://tickets.example.com/PAY-204")))
    assert created.status_code == 201, created.content
    change = created.parsed
    assert isinstance(change, models.ChangeRequest)
    assert (change.state, change.author, change.contributors) == (models.ChangeStateEnum.DRAFT, "dev", ["dev2"])
    assert change.submitted_at is None and change.approved_at is None

    submitted = api("change_requests", "v1_change_requests_submit_create").sync(id=change.id, client=dev)
    assert isinstance(submitted, models.ChangeRequest) and submitted.state == models.ChangeStateEnum.PENDING

    approved = api("change_requests", "v1_change_requests_approve_create").sync(
        id=change.id, client=rev, body=models.DecisionRequest(revision=submitted.revision, comment="Looks right."))
    assert isinstance(approved, models.ChangeRequest), approved
    assert approved.state == models.ChangeStateEnum.APPROVED
    [decision] = approved.approvals
    assert (decision.reviewer, decision.revision, decision.stale) == ("rev", submitted.revision, False)

    gate = api("change_requests", "v1_change_requests_gate_retrieve").sync(
        id=change.id, client=ops, action=models.V1ChangeRequestsGateRetrieveAction.DEPLOY)
    assert isinstance(gate, models.Gate)
    assert gate.allowed is True and gate.reasons == []
    assert gate.requirements.prior_environment is None, "staging needs no prior environment: null, not a 500"

    started = api("change_requests", "v1_change_requests_deployments_create").sync_detailed(
        id=change.id, client=ops,
        body=models.DeploymentStartRequest(pipeline_url="https://ci.example.com/payments/runs/981"))
    assert started.status_code == 201, started.content
    deployment = started.parsed
    assert (deployment.state, deployment.deployer, deployment.change_request) == (
        models.DeploymentStateEnum.RUNNING, "ops", change.id)

    finished = api("deployments", "v1_deployments_finish_create").sync(
        id=deployment.id, client=ops,
        body=models.DeploymentFinishRequest(outcome=models.OutcomeEnum.SUCCEEDED, notes="3/3 pods."))
    assert isinstance(finished, models.Deployment) and finished.state == models.DeploymentStateEnum.SUCCEEDED
    final = api("change_requests", "v1_change_requests_retrieve").sync(id=change.id, client=dev)
    assert final.state == models.ChangeStateEnum.DEPLOYED and final.deployed_at is not None

    # A grant refused: nobody grants a role to themselves (G2). The body is the shared Refusal.
    refused = api("role_assignments", "v1_role_assignments_create").sync_detailed(client=mgr, body=(
        models.RoleAssignmentCreateRequest(user="mgr", role="reviewer", team="payments", environment="staging",
                                           justification="I will review too.")))
    assert refused.status_code == 403
    assert isinstance(refused.parsed, models.Refusal), refused.parsed
    assert [reason.code for reason in refused.parsed.reasons] == ["self_grant"]
    assert all(isinstance(reason, models.Reason) and reason.message for reason in refused.parsed.reasons)

    # Evidence: request, poll until built, download the ZIP as bytes.
    today = timezone.now().date()
    requested = api("evidence_exports", "v1_evidence_exports_create").sync_detailed(client=auditor, body=(
        models.EvidenceExportCreateRequest(framework=models.FrameworkEnum.SOX, period_start=today - timedelta(days=30),
                                           period_end=today)))
    assert requested.status_code == 202, requested.content
    retrieve = api("evidence_exports", "v1_evidence_exports_retrieve")

    def built():
        export = retrieve.sync(id=requested.parsed.id, client=auditor)
        return export if export.status in ("done", "failed") else None

    done = wait_for(built, timeout=120, what="the evidence export to be built")
    assert isinstance(done, models.EvidenceExport) and done.status == "done", done
    downloaded = api("evidence_exports", "v1_evidence_exports_download_retrieve").sync(id=done.id, client=auditor)
    assert isinstance(downloaded, package.types.File), downloaded
    payload = downloaded.payload.read()
    assert hashlib.sha256(payload).hexdigest() == done.sha256
    assert zipfile.ZipFile(io.BytesIO(payload)).namelist()
