"""The policy engine: pure decisions over already-loaded objects and a time (STYLE.md point 3).

``evaluate(context, action, at)`` returns a ``Decision`` with *every* reason that applies, using
the reason codes of RULES.md C1–C12. Nothing here queries the database: ``releases.selectors.
policy_context`` loads everything in a fixed number of queries, and the portal's checklist, the
API's gate endpoint and the services all decide through this module.
"""
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from governance import duties
from core.errors import Reason
from releases import states
from releases.models import Approval, ApprovalPolicy, ChangeRequest, FreezeWindow, StandardChangeTemplate

APPROVE_DUTIES = frozenset({duties.APPROVE, duties.SECURITY_APPROVE})
ACTIONS = ("submit", "approve", "reject", "request_changes", "deploy", "retry")
DEFAULT_POLICY = ApprovalPolicy(min_approvals=1)
# An artifact pinned by content: ``[name@]sha256:<64 hex>`` (an OCI image digest or a bare one).
PINNED_ARTIFACT = re.compile(r"^(?:(?P<name>[^@\s]+)@)?sha256:(?P<digest>[0-9a-f]{64})$")


def pinned_digest(artifact: str) -> tuple[str, str] | None:
    """``(name, sha256 hex)`` of an artifact pinned by digest, or None for a tag, a version, a commit."""
    match = PINNED_ARTIFACT.match(artifact or "")
    return (match["name"] or "", match["digest"]) if match else None


def _pinned_reason(cr: ChangeRequest) -> list[Reason]:
    """Production deploys content, not a name that can move: an artifact pinned by ``sha256:``
    digest, which the signed attestation names as its subject (integrations)."""
    if cr.environment.is_production and pinned_digest(cr.artifact) is None:
        return [Reason(
            "artifact_not_pinned",
            f"A change to {cr.environment.slug} must name its artifact by digest "
            f"(e.g. registry.example.com/app@sha256:<64 hex>), not {cr.artifact[:120]!r}.",
        )]
    return []


@dataclass(frozen=True)
class PolicyContext:
    """Everything a decision needs, loaded up front."""

    change_request: ChangeRequest
    policy: ApprovalPolicy | None
    contributor_ids: frozenset[int]  # everyone listed as a contributor of any revision, ever
    approvals: tuple[Approval, ...]
    actor: object
    actor_duties: frozenset[str]
    actor_is_team_member: bool
    active_freezes: tuple[FreezeWindow, ...] = ()
    prior_environment_slug: str | None = None
    prior_environment_deployed: bool = True
    # The templates of the change's environment in force at the moment decided (loaded for
    # standard changes only): the catalogue a standard change must match (C9).
    standard_templates: tuple[StandardChangeTemplate, ...] = ()

    @property
    def effective_policy(self) -> ApprovalPolicy:
        return self.policy or DEFAULT_POLICY

    @property
    def actor_is_contributor(self) -> bool:
        return self.actor.pk in self.contributor_ids


@dataclass(frozen=True)
class ApprovalStatus:
    required: int
    required_security: int
    team_reviewer_required: bool
    valid: tuple[Approval, ...]
    expired: tuple[Approval, ...]
    security: int
    team_reviewer_present: bool
    floor_required: bool = False  # K4: production always needs an independent human approval
    independent: int = 0  # valid approvals by people, neither author nor contributor

    @property
    def approvers(self) -> int:
        """Distinct approvers among the valid approvals (the policy's own approval counts as one)."""
        return len({a.reviewer_id or f"auto-{a.pk}" for a in self.valid})

    @property
    def approvals_met(self) -> bool:
        return self.approvers >= self.required

    @property
    def security_met(self) -> bool:
        return self.security >= self.required_security

    @property
    def team_reviewer_met(self) -> bool:
        return not self.team_reviewer_required or self.team_reviewer_present or self.required == 0

    @property
    def policy_met(self) -> bool:
        """What the environment's policy asks, on its own."""
        return self.approvals_met and self.security_met and self.team_reviewer_met

    @property
    def floor_met(self) -> bool:
        return not self.floor_required or self.independent >= 1

    @property
    def met(self) -> bool:
        return self.policy_met and self.floor_met

    @property
    def count(self) -> int:
        return len(self.valid)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    action: str
    reasons: tuple[Reason, ...] = ()
    requirements: dict = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def as_dict(self) -> dict:
        return {
            "allowed": self.allowed,
            "action": self.action,
            "reasons": [r.as_dict() for r in self.reasons],
            "requirements": self.requirements,
        }


def standard_template(ctx: PolicyContext, at: datetime) -> StandardChangeTemplate | None:
    """C9: the catalogue entry that makes this change standard at ``at``, if any. The author's own
    label is not enough: a change is standard only while an active, unexpired template of its
    environment covers its risk and its artifact."""
    cr = ctx.change_request
    if cr.change_type != ChangeRequest.ChangeType.STANDARD:
        return None
    return next((t for t in ctx.standard_templates if t.covers(cr, at)), None)


def is_independent(approval: Approval, ctx: PolicyContext) -> bool:
    """K4: a person's approval (not the policy's own), by someone who neither wrote nor ever
    contributed to the change."""
    return (
        approval.via != Approval.Via.AUTO
        and approval.reviewer_id is not None
        and approval.reviewer_id != ctx.change_request.author_id
        and approval.reviewer_id not in ctx.contributor_ids
    )


def approval_status(ctx: PolicyContext, at: datetime) -> ApprovalStatus:
    """C3, C4, C9, C10 and the K4 floor: which approvals of the current revision still count, and
    whether they suffice."""
    cr, policy = ctx.change_request, ctx.effective_policy
    template = standard_template(ctx, at)
    ttl = timedelta(hours=policy.approval_ttl_hours) if policy.approval_ttl_hours else None
    # The policy's own approval counts only while a template still makes the change standard.
    # An approval by someone later found to be a contributor (learnt from the source, integrations)
    # no longer counts: contributors never approve (C2), whenever we learn they are one.
    current = [
        a for a in _current(ctx)
        if a.decision == Approval.Decision.APPROVED and (a.via != Approval.Via.AUTO or template is not None)
        and a.reviewer_id not in ctx.contributor_ids
    ]
    valid = tuple(a for a in current if ttl is None or a.created_at > at - ttl)
    expired = tuple(a for a in current if a not in valid)
    required = policy.min_approvals
    if cr.is_emergency and (
        policy.emergency_min_approvals >= policy.min_approvals
        or any(a.is_on_call or a.is_security for a in valid)
    ):
        # C10: fewer approvals only with an on-call reviewer's or security's confirmation among them.
        required = policy.emergency_min_approvals
    required_security = policy.min_security_approvals
    if cr.risk == ChangeRequest.Risk.HIGH:
        required_security = max(required_security, policy.high_risk_security_approvals)
    if template is not None and any(a.via == Approval.Via.AUTO for a in valid):
        required_security = 0  # C9: approved through the catalogue of standard changes
    return ApprovalStatus(
        required=required,
        required_security=required_security,
        team_reviewer_required=policy.team_reviewer_required,
        valid=valid,
        expired=expired,
        security=sum(1 for a in valid if a.is_security),
        team_reviewer_present=any(a.is_team_member for a in valid),
        floor_required=cr.environment.is_production,
        independent=sum(1 for a in valid if is_independent(a, ctx)),
    )


def _current(ctx: PolicyContext) -> list[Approval]:
    revision = ctx.change_request.revision
    return [a for a in ctx.approvals if a.revision == revision and not a.stale]


def auto_approvable(ctx: PolicyContext, at: datetime) -> StandardChangeTemplate | None:
    """C9: the template under which the policy approves this change itself (standard, low risk,
    matched by the catalogue, where the policy allows it), or None."""
    if not ctx.effective_policy.allow_auto_approve_standard or ctx.change_request.risk != ChangeRequest.Risk.LOW:
        return None
    return standard_template(ctx, at)


def in_deploy_window(policy: ApprovalPolicy, time_zone: str, at: datetime) -> bool:
    """C7: weekdays and hours in the environment's own time zone; a window may wrap midnight."""
    local = at.astimezone(ZoneInfo(time_zone or "UTC"))
    weekdays = policy.weekdays()
    if weekdays and local.isoweekday() not in weekdays:
        return False
    start, end = policy.deploy_window_start, policy.deploy_window_end
    if start is None or end is None:
        return True
    now = local.time()
    return start <= now < end if start <= end else (now >= start or now < end)


def freeze_met(ctx: PolicyContext, status: ApprovalStatus) -> bool:
    """C6: no freeze window in force, or an emergency change with a security approval."""
    return not ctx.active_freezes or (ctx.change_request.is_emergency and status.security >= 1)


def sod_conflicts(*, author_id, contributor_ids, approver_ids, deployer_id) -> list[str]:
    """C2, C5: the ways author, contributors, approvers and deployer of one deployment are not all
    distinct people (empty: they are). The deployment's decision record holds the answer at the
    time; the evidence asks it again of the facts as they stand at export (an approval or a
    contributor recorded later)."""
    approver_ids, contributor_ids = set(approver_ids) - {None}, set(contributor_ids)
    found = []
    if author_id in approver_ids:
        found.append("author_approved")
    if contributor_ids & approver_ids:
        found.append("contributor_approved")
    if deployer_id == author_id:
        found.append("deployer_is_author")
    if deployer_id in contributor_ids:
        found.append("deployer_is_contributor")
    if deployer_id in approver_ids:
        found.append("deployer_approved")
    return found


def deploy_checks(ctx: PolicyContext, at: datetime) -> list[dict]:
    """Each requirement a deployment must meet (C4–C8, C10 and the K4 floor), with what was asked,
    what the change had and whether it was met: the requirements of the decision record."""
    cr, policy = ctx.change_request, ctx.effective_policy
    status = approval_status(ctx, at)
    window = in_deploy_window(policy, cr.environment.time_zone, at)
    prior = ctx.prior_environment_slug
    return [
        {"name": "approvals", "required": status.required, "actual": status.approvers, "met": status.approvals_met,
         "expired": len(status.expired)},
        {"name": "security_approvals", "required": status.required_security, "actual": status.security,
         "met": status.security_met},
        {"name": "team_reviewer", "required": status.team_reviewer_required, "actual": status.team_reviewer_present,
         "met": status.team_reviewer_met},
        {"name": "independent_approval", "required": status.floor_required, "actual": status.independent,
         "met": status.floor_met},
        {"name": "freeze_windows", "required": [f.name for f in ctx.active_freezes], "actual": cr.is_emergency,
         "met": freeze_met(ctx, status)},
        {"name": "deploy_window", "required": True, "actual": window, "met": window},
        {"name": "prior_environment", "required": prior, "actual": ctx.prior_environment_deployed if prior else None,
         "met": not prior or ctx.prior_environment_deployed},
    ]


def _is_approver(ctx: PolicyContext) -> bool:
    return any(
        a.reviewer_id == ctx.actor.pk and a.decision == Approval.Decision.APPROVED for a in ctx.approvals
    )


def article(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _state_reason(cr: ChangeRequest, action: str) -> Reason:
    return Reason("invalid_state", f"{article(cr.state).capitalize()} change request cannot be {_PAST[action]}.")


_PAST = {"submit": "submitted", "approve": "approved", "reject": "rejected", "request_changes": "sent back for changes",
         "deploy": "deployed", "retry": "retried"}


def _submit(ctx: PolicyContext, at: datetime) -> list[Reason]:
    cr, reasons = ctx.change_request, []
    if not states.allows("submit", cr.state):
        reasons.append(_state_reason(cr, "submit"))
    if duties.SUBMIT not in ctx.actor_duties:
        reasons.append(Reason("missing_duty", f"You do not hold submit for {cr.environment.slug}."))
    if ctx.actor.pk != cr.author_id:
        reasons.append(Reason("not_author", "Only the author submits a change request."))
    reasons.extend(_pinned_reason(cr))
    return reasons


def _decide(ctx: PolicyContext, at: datetime, action: str, via: str) -> list[Reason]:
    cr, reasons = ctx.change_request, []
    if not states.allows(action, cr.state):
        reasons.append(_state_reason(cr, action))
    if not (APPROVE_DUTIES & ctx.actor_duties):
        reasons.append(Reason("missing_duty", f"You do not hold approve for {cr.environment.slug}."))
    if ctx.actor.pk == cr.author_id:
        reasons.append(Reason("author_cannot_approve", "The author of a change may not approve or reject it."))
    if ctx.actor_is_contributor:
        reasons.append(
            Reason("contributor_cannot_approve",
                   "A contributor to a change (in any of its revisions) may not approve or reject it.")
        )
    if any(a.reviewer_id == ctx.actor.pk for a in _current(ctx)):
        reasons.append(
            Reason("already_approved", f"You have already decided revision {cr.revision} of this change.")
        )
    if action == "approve" and via != Approval.Via.PORTAL and ctx.effective_policy.require_interactive_signoff:
        reasons.append(
            Reason(
                "interactive_signoff_required",
                f"{cr.environment.slug} takes approvals only from the portal's sign-off form.",
            )
        )
    if action == "approve":
        reasons.extend(_pinned_reason(cr))
    return reasons


def _deploy(ctx: PolicyContext, at: datetime, action: str = "deploy") -> list[Reason]:
    """C5–C8 for a first deployment (``deploy``) and for a new attempt after a failed one
    (``retry``): the same checks, from their own states."""
    cr, policy, reasons = ctx.change_request, ctx.effective_policy, []
    status = approval_status(ctx, at)
    if cr.state in states.NOT_YET_APPROVED:
        reasons.append(Reason("not_approved", f"The change request is {cr.state}, not approved."))
    elif not states.allows(action, cr.state):
        reasons.append(_state_reason(cr, action))
    elif not status.policy_met and status.expired:
        reasons.append(
            Reason(
                "approvals_expired",
                f"Approvals older than {policy.approval_ttl_hours} hours no longer count; ask for a new review.",
            )
        )
    elif not status.policy_met:
        reasons.append(
            Reason(
                "approvals_insufficient",
                f"The policy of {cr.environment.slug} now asks for more approvals than this change has "
                f"({status.count} of {status.required}, {status.security} of {status.required_security} security).",
            )
        )
    elif not status.floor_met:
        reasons.append(
            Reason(
                "control_floor",
                f"A deployment to {cr.environment.slug} needs at least one approval by a person who neither wrote "
                "nor contributed to the change, whatever its policy says.",
            )
        )
    if duties.DEPLOY not in ctx.actor_duties:
        reasons.append(Reason("missing_duty", f"You do not hold deploy for {cr.environment.slug}."))
    if ctx.actor.pk == cr.author_id:
        reasons.append(Reason("author_cannot_deploy", "The author of a change may not deploy it."))
    if ctx.actor_is_contributor:
        reasons.append(
            Reason("contributor_cannot_deploy", "A contributor to a change (in any of its revisions) may not deploy it.")
        )
    if _is_approver(ctx):
        reasons.append(Reason("approver_cannot_deploy", "Whoever approved a change may not deploy it."))
    if not freeze_met(ctx, status):
        names = ", ".join(f.name for f in ctx.active_freezes)
        reasons.append(
            Reason(
                "freeze_window_active",
                f"Deployments to {cr.environment.slug} are frozen ({names}); "
                "only emergency changes with a security approval may proceed.",
            )
        )
    if not in_deploy_window(policy, cr.environment.time_zone, at):
        reasons.append(
            Reason("outside_deploy_window", f"{cr.environment.slug} accepts deployments only inside its deploy window.")
        )
    if ctx.prior_environment_slug and not ctx.prior_environment_deployed:
        reasons.append(
            Reason(
                "prior_environment_required",
                f"Artifact {cr.artifact} must first be deployed successfully to {ctx.prior_environment_slug}.",
            )
        )
    reasons.extend(_pinned_reason(cr))
    return reasons


def requirements(ctx: PolicyContext, at: datetime) -> dict:
    """What the policy asks of this change and how far it has got: the portal's checklist and the
    gate endpoint's ``requirements``."""
    status = approval_status(ctx, at)
    policy = ctx.effective_policy
    template = standard_template(ctx, at)
    return {
        "approvals": {"required": status.required, "valid": status.count, "expired": len(status.expired)},
        "security_approvals": {"required": status.required_security, "valid": status.security},
        "team_reviewer": {"required": status.team_reviewer_required, "present": status.team_reviewer_present},
        "independent_approval": {"required": status.floor_required, "present": status.independent >= 1},
        "standard_template": template.name if template is not None else None,
        "approval_ttl_hours": policy.approval_ttl_hours,
        "approvals_met": status.met,
        "interactive_signoff_required": policy.require_interactive_signoff,
        "freeze_windows": [f.name for f in ctx.active_freezes],
        "in_deploy_window": in_deploy_window(policy, ctx.change_request.environment.time_zone, at),
        "prior_environment": (
            {"environment": ctx.prior_environment_slug, "deployed": ctx.prior_environment_deployed}
            if ctx.prior_environment_slug
            else None
        ),
    }


def evaluate(ctx: PolicyContext, action: str, at: datetime, *, via: str = Approval.Via.API) -> Decision:
    if action == "submit":
        reasons = _submit(ctx, at)
    elif action in ("approve", "reject", "request_changes"):
        reasons = _decide(ctx, at, action, via)
    elif action in ("deploy", "retry"):
        reasons = _deploy(ctx, at, action)
    else:
        raise ValueError(f"Unknown action {action!r}; expected one of {ACTIONS}.")
    return Decision(not reasons, action, tuple(reasons), requirements(ctx, at))
