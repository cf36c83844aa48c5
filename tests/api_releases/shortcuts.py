"""What the releases API stories say often: where a change lives, how one is set up, the codes of
a refusal. Setup goes through the services, as every other client's writes do."""
import itertools

from governance import services as governance_services
from releases import services
from releases.models import ChangeRequest

CHANGES = "/api/v1/change-requests/"
DEPLOYMENTS = "/api/v1/deployments/"
_artifacts = itertools.count(1)


def change_url(change, verb: str = "") -> str:
    pk = change if isinstance(change, int) else change.pk
    return f"{CHANGES}{pk}/{verb + '/' if verb else ''}"


def deployment_url(deployment, verb: str = "") -> str:
    pk = deployment if isinstance(deployment, int) else deployment.pk
    return f"{DEPLOYMENTS}{pk}/{verb + '/' if verb else ''}"


def codes(response) -> list[str]:
    return [reason["code"] for reason in response.json()["reasons"]]


def new_artifact() -> str:
    return f"registry.example.com/payments-api@sha256:{next(_artifacts):064x}"


def draft(demo, author, environment, **extra) -> ChangeRequest:
    fields = {"title": "Tune connection pool", "artifact": new_artifact(), **extra}
    if fields.get("change_type") == "emergency":
        fields.setdefault("emergency_reason", "Refunds fail for every customer.")
    return services.change_request_create(actor=author, team=demo.payments, environment=environment, **fields)


def pending(demo, author, environment, **extra) -> ChangeRequest:
    return services.change_request_submit(actor=author, change_request=draft(demo, author, environment, **extra))


def approved(demo, author, environment, *, reviewers=None, **extra) -> ChangeRequest:
    """Submitted by ``author`` and signed off by ``reviewers`` (rev, and rev2 where two are needed)."""
    change = pending(demo, author, environment, **extra)
    for reviewer in reviewers or (demo.rev, demo.rev2):
        if change.state == ChangeRequest.State.APPROVED:
            break
        change = services.change_request_approve(actor=reviewer, change_request=change, via="portal")
    assert change.state == ChangeRequest.State.APPROVED
    return change


def deployed(demo, change, deployer=None):
    deployer = deployer or demo.ops
    deployment = services.deployment_start(actor=deployer, change_request=change)
    return services.deployment_finish(actor=deployer, deployment=deployment, outcome="succeeded")


def grant(demo, user, role_slug: str, environment):
    """mgr grants a non-privileged role (outside production, where no conflict rule applies)."""
    return governance_services.role_grant(
        actor=demo.mgr, user=user, role=demo.roles[role_slug], team=demo.payments, environment=environment,
        justification="Covering for a colleague this sprint.",
    )
