"""The decision record (issue 15): what the policy engine decided when a deployment started,
stored as data on the deployment (``Deployment.decision``) so that evidence reports the decision
taken instead of recomputing the rules.

``record`` is pure, like ``releases.policy``: it turns the context the engine decided on, its
``Decision`` and a few facts the selectors load (``releases.selectors.decision_facts``: usernames,
the policy version, the grants held under an SoD exception) into JSON-ready data. Its shape
(``FORMAT``) is documented in docs/rules.md (L-section).
"""
from datetime import datetime, timezone

from releases import policy

FORMAT = 1
POLICY_FIELDS = (
    "min_approvals", "min_security_approvals", "high_risk_security_approvals", "team_reviewer_required",
    "approval_ttl_hours", "allow_auto_approve_standard", "require_prior_environment", "deploy_weekdays",
    "deploy_window_start", "deploy_window_end", "emergency_min_approvals", "pir_due_hours",
    "require_interactive_signoff",
)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with Z, as the evidence bundle writes times."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if value is not None else None


def policy_values(approval_policy, prior_slug: str | None) -> dict:
    """An approval policy's values as the record (and the evidence) shows them."""
    values = {}
    for name in POLICY_FIELDS:
        if name == "require_prior_environment":
            values[name] = prior_slug if approval_policy.require_prior_environment_id else None
        else:
            value = getattr(approval_policy, name)
            values[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return values


def held_under_exception(grants, user_id, environment_id, at: datetime) -> list[int]:
    """Ids of the SoD exceptions under which ``user_id`` held a grant for the environment at
    ``at``. ``grants``: (user id, environment id, exception id, approved_at, expires_at, ended_at)
    rows of grants made under an exception."""
    held = set()
    for grant_user, grant_environment, exception_id, approved_at, expires_at, ended_at in grants:
        if grant_user != user_id or grant_environment not in (None, environment_id):
            continue
        if (approved_at is not None and approved_at <= at and (expires_at is None or expires_at > at)
                and (ended_at is None or ended_at > at)):
            held.add(exception_id)
    return sorted(held)


def record(ctx: policy.PolicyContext, decision: policy.Decision, at: datetime, *, usernames: dict,
           policy_version: dict | None, exception_grants) -> dict:
    """The decision record of a deployment started by ``ctx.actor`` at ``at``."""
    cr = ctx.change_request
    environment = cr.environment
    status = policy.approval_status(ctx, at)
    template = policy.standard_template(ctx, at)
    counted = status.valid
    exceptions = []

    def participant(role: str, user_id, when: datetime) -> dict:
        held = held_under_exception(exception_grants, user_id, environment.pk, when) if user_id else []
        exceptions.extend(f"{role} {usernames.get(user_id)} under SoD exception #{e}" for e in held)
        return {"id": user_id, "username": usernames.get(user_id), "sod_exceptions": held}

    approvers = []
    for a in counted:
        entry = participant("approver", a.reviewer_id, a.created_at) if a.reviewer_id else {
            "id": None, "username": "system (policy)", "sod_exceptions": []}
        approvers.append({
            **entry,
            "approval_id": a.pk,
            "role": "security_approve" if a.is_security else ("auto" if a.via == "auto" else "approve"),
            "revision": a.revision,
            "via": a.via,
            "at": iso(a.created_at),
            "security": a.is_security,
            "team_member": a.is_team_member,
            "on_call": a.is_on_call,
            "independent": policy.is_independent(a, ctx),
        })
    author = participant("author", cr.author_id, cr.created_at)
    deployer = participant("deployer", ctx.actor.pk, at)
    conflicts = policy.sod_conflicts(
        author_id=cr.author_id, contributor_ids=ctx.contributor_ids,
        approver_ids={a.reviewer_id for a in counted}, deployer_id=ctx.actor.pk,
    )
    sod_reasons = [c for c in decision.codes if c in SOD_REASONS]
    checks = policy.deploy_checks(ctx, at)
    effective = ctx.effective_policy
    prior_slug = ctx.prior_environment_slug
    return {
        "format": FORMAT,
        "decided_at": iso(at),
        "action": decision.action,
        "allowed": decision.allowed,
        "reasons": [r.as_dict() for r in decision.reasons],
        "environment": {"id": environment.pk, "slug": environment.slug, "tier": environment.tier},
        "change_request": {"id": cr.pk, "revision": cr.revision, "artifact": cr.artifact,
                           "change_type": cr.change_type, "risk": cr.risk},
        "policy": {
            "id": ctx.policy.pk if ctx.policy is not None else None,
            "version": policy_version,
            "default": ctx.policy is None,
            "values": policy_values(effective, prior_slug),
        },
        "controls": {
            "freeze_windows": [{"id": f.pk, "name": f.name} for f in ctx.active_freezes],
            "standard_template": {"id": template.pk, "name": template.name} if template is not None else None,
            "prior_environment": prior_slug,
        },
        "requirements": checks,
        "approvers": approvers,
        "expired_approvals": [a.pk for a in status.expired],
        "author": author,
        "contributors": [{"id": pk, "username": usernames.get(pk)} for pk in sorted(ctx.contributor_ids)],
        "deployer": deployer,
        "sod": {
            "verdict": "violation" if conflicts or sod_reasons else ("exception" if exceptions else "pass"),
            "findings": list(dict.fromkeys(conflicts + sod_reasons)) + exceptions,
        },
    }


SOD_REASONS = frozenset({"author_cannot_deploy", "contributor_cannot_deploy", "approver_cannot_deploy"})
