"""Signed approval attestations (issue 16, item 4; docs/integrations.md).

When a production change is approved, and again when its deployment starts, Countersign issues an
in-toto Statement v1 about the artifact's digest, wrapped in a DSSE envelope signed with the
server's Ed25519 key (``audit.signing``, the key that signs seals and evidence bundles). The
predicate carries the SoD decision: the change, its revision, the approvals that count with each
approver's roles and time, the policy version, the environment and an expiry. Admission controllers
(Kyverno ``verifyImages``, Sigstore's policy-controller) check it before the image runs.
"""
import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from audit import signing
from core.shapes import Shape, any_of
from governance.models import RoleAssignment
from integrations.attestation_verify import PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, pae
from integrations.models import Attestation
from releases import policy, selectors
from releases.models import Approval, ApprovalPolicy, ChangeRequest, Deployment

POLICY_FIELDS = (
    "min_approvals", "min_security_approvals", "high_risk_security_approvals", "team_reviewer_required",
    "approval_ttl_hours", "allow_auto_approve_standard", "require_prior_environment_id", "deploy_weekdays",
    "deploy_window_start", "deploy_window_end", "emergency_min_approvals", "require_interactive_signoff",
)


class Person(NamedTuple):
    username: str
    email: str


def _utc(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def policy_version(approval_policy: ApprovalPolicy | None) -> dict:
    """Which policy decided: its history row (simple-history) and a hash of what it asks."""
    if approval_policy is None:
        return {"id": None, "history_id": None, "sha256": None}
    values = {name: str(getattr(approval_policy, name)) for name in POLICY_FIELDS}
    latest = selectors.policy_history(approval_policy)  # the version the decision's record names
    return {
        "id": approval_policy.pk,
        "history_id": latest[0] if latest else None,
        "sha256": hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest(),
    }


def _reviewers(change_request_id):
    return Approval.objects.filter(change_request_id=change_request_id).values("reviewer_id")


# Compiled once (core.shapes, issue 21): the change's author and reviewers with their addresses,
# and the roles its reviewers hold in force at ``at`` on its environment (or on every one). Both
# read every reviewer of the change; ``build_statement`` keeps the approvals that count.
_PEOPLE = Shape(
    lambda change_request_id: get_user_model().objects.filter(pk__in=any_of(
        ChangeRequest.objects.filter(pk=change_request_id).values("author_id"), _reviewers(change_request_id),
    )).values_list("pk", "username", "email"),
    change_request_id=int,
)
_ROLES = Shape(
    lambda change_request_id, environment_id, at: RoleAssignment.objects.in_force(at).filter(
        Q(environment_id=environment_id) | Q(environment__isnull=True),
        user_id__in=_reviewers(change_request_id),
    ).order_by().values_list("user_id", "role__slug"),
    change_request_id=int, environment_id=int, at=datetime,
)


def _roles(cr, user_ids, at: datetime) -> dict[int, list[str]]:
    roles: dict[int, set[str]] = {uid: set() for uid in user_ids}
    for user_id, slug in _ROLES.rows(change_request_id=cr.pk, environment_id=cr.environment_id, at=at):
        if user_id in roles:
            roles[user_id].add(slug)
    return {uid: sorted(slugs) for uid, slugs in roles.items()}


def build_statement(ctx: policy.PolicyContext, *, kind: str, at: datetime,
                    deployment: Deployment | None = None) -> tuple[dict, datetime]:
    """The in-toto Statement for the change of ``ctx`` as it stands at ``at``, and its expiry."""
    cr = ctx.change_request
    name, digest = policy.pinned_digest(cr.artifact)
    status = policy.approval_status(ctx, at)  # whoever ctx's actor is: the approvals that count are the change's
    valid = sorted(status.valid, key=lambda a: (a.created_at, a.pk))
    people = {pk: Person(username, email) for pk, username, email in _PEOPLE.rows(change_request_id=cr.pk)}
    roles = _roles(cr, {a.reviewer_id for a in valid if a.reviewer_id}, at)
    ttl_hours = ctx.effective_policy.approval_ttl_hours
    expires = at + timedelta(hours=settings.COUNTERSIGN_ATTESTATION_TTL_HOURS)
    if ttl_hours and valid:
        # An approval that stops counting takes the attestation with it (C3's TTL).
        expires = min(expires, valid[0].created_at + timedelta(hours=ttl_hours))
    approvers = [
        {
            "username": people[a.reviewer_id].username if a.reviewer_id else None,
            "email": (people[a.reviewer_id].email or None) if a.reviewer_id else None,
            "roles": roles.get(a.reviewer_id, []) if a.reviewer_id else ["system"],
            "security": a.is_security,
            "teamMember": a.is_team_member,
            "onCall": a.is_on_call,
            "via": a.via,
            "approvedAt": _utc(a.created_at),
        }
        for a in valid
    ]
    predicate = {
        "changeRequest": {
            "id": cr.pk,
            "revision": cr.revision,
            "title": cr.title,
            "team": cr.team.slug,
            "changeType": cr.change_type,
            "risk": cr.risk,
            "author": people[cr.author_id].username,
            "contributors": sorted(ctx.contributor_ids),
        },
        "decision": "approved",
        "event": kind,
        "environment": {"slug": cr.environment.slug, "tier": cr.environment.tier},
        "approvers": approvers,
        "policy": policy_version(ctx.policy),
        "approvedAt": _utc(cr.approved_at) if cr.approved_at else None,
        "issuedAt": _utc(at),
        "expiresAt": _utc(expires),
        "issuer": {"keyid": signing.fingerprint()},
    }
    if deployment is not None:
        predicate["deployment"] = {
            "id": deployment.pk, "deployer": deployment.deployer.username, "startedAt": _utc(deployment.started_at),
            "pipelineUrl": deployment.pipeline_url or None,
        }
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name or cr.artifact.split("@")[0], "digest": {"sha256": digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
    return statement, expires


def envelope_for(statement: dict) -> dict:
    """The DSSE envelope: the statement's bytes, base64, and the Ed25519 signature over their PAE."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": signing.fingerprint(), "sig": signing.sign(pae(PAYLOAD_TYPE, payload))}],
    }


def issue(context: policy.PolicyContext, *, kind: str, at: datetime, deployment: Deployment | None = None) -> Attestation | None:
    """Sign and store one attestation for a production change (others get none). Called inside the
    transition's transaction by ``integrations.receivers`` with ``context``, the policy context the
    transition was decided with (the change and its approvals as they stand in that transaction)."""
    cr = context.change_request
    if not cr.environment.is_production or policy.pinned_digest(cr.artifact) is None:
        return None  # the policy refuses an unpinned production artifact before it gets here
    statement, expires = build_statement(context, kind=kind, at=at, deployment=deployment)
    subject = statement["subject"][0]
    return Attestation.objects.create(
        change_request=cr, deployment=deployment, kind=kind, revision=cr.revision,
        subject_name=subject["name"][:255], subject_digest=subject["digest"]["sha256"],
        envelope=envelope_for(statement), issued_at=at, expires_at=expires,
    )
