"""The paths the release stories walk again and again, each through the services as the personas
would: dev writes, rev and rev2 approve, ops deploys."""
from itertools import count

from audit.models import AuditEvent
from releases import services
from releases.models import ChangeRequest, Deployment

_artifacts = count(1)


def new_artifact(name: str = "payments-api") -> str:
    """A fresh artifact, so no story inherits another's staging deployment (C8)."""
    return f"registry.example.com/{name}@sha256:{next(_artifacts):064x}"


EMERGENCY_REASON = "Card payments fail for every customer since the last release."


def draft(demo, at, *, author=None, environment=None, team=None, artifact=None, **fields) -> ChangeRequest:
    if fields.get("change_type") == "emergency":
        fields.setdefault("emergency_reason", EMERGENCY_REASON)
    return services.change_request_create(
        actor=author or demo.dev,
        team=team or demo.payments,
        environment=environment or demo.staging,
        title=fields.pop("title", "Retry card authorisation on timeout"),
        artifact=artifact or new_artifact(),
        at=at,
        **fields,
    )


def pending(demo, at, **fields) -> ChangeRequest:
    cr = draft(demo, at, **fields)
    return services.change_request_submit(actor=cr.author, change_request=cr, at=at)


def approved_in_staging(demo, at, **fields) -> ChangeRequest:
    """dev writes it, rev approves it over the API: staging needs one approval."""
    cr = pending(demo, at, environment=demo.staging, **fields)
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, at=at)
    assert cr.state == ChangeRequest.State.APPROVED
    return cr


def deploy(demo, cr, at, *, deployer=None, outcome="succeeded") -> Deployment:
    deployment = services.deployment_start(actor=deployer or demo.ops, change_request=cr, at=at)
    return services.deployment_finish(actor=deployer or demo.ops, deployment=deployment, outcome=outcome, at=at)


def staged(demo, at, artifact: str) -> ChangeRequest:
    """The artifact went through staging: approved by rev, deployed by ops (what C8 asks first)."""
    cr = approved_in_staging(demo, at, artifact=artifact)
    deploy(demo, cr, at)
    return cr


def pending_in_production(demo, at, *, stage=True, **fields) -> ChangeRequest:
    artifact = fields.pop("artifact", None) or new_artifact()
    if stage:
        staged(demo, at, artifact)
    return pending(demo, at, environment=demo.production, artifact=artifact, **fields)


def approved_in_production(demo, at, *, reviewers=None, **fields) -> ChangeRequest:
    """Two portal sign-offs by payments reviewers (production's policy), after staging."""
    cr = pending_in_production(demo, at, **fields)
    for reviewer in reviewers or (demo.rev, demo.rev2):
        cr = services.change_request_approve(actor=reviewer, change_request=cr, via="portal", at=at)
    return cr


def events_for(cr) -> list[AuditEvent]:
    """The audit events about one change request, oldest first."""
    return list(
        AuditEvent.objects.filter(target_type="releases.changerequest", target_id=str(cr.pk)).order_by("sequence")
    )


def transitions_of(cr) -> list[tuple[str, str]]:
    return [(e.data["from_state"], e.data["to_state"]) for e in events_for(cr)]


def reload(cr) -> ChangeRequest:
    return ChangeRequest.objects.get(pk=cr.pk)
