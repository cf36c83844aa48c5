"""The policy engine: pure decisions over already-loaded objects and a time (STYLE.md point 3).

``evaluate(context, action, at)`` returns a ``Decision`` with *every* reason that applies, using
the reason codes of RULES.md C1–C12. Nothing here queries the database: ``releases.selectors.
policy_context`` loads everything in a fixed number of queries, and the portal's checklist, the
API's gate endpoint and the services all decide through this module.
"""
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from governance import duties
from governance.errors import Reason
from releases.models import Approval, ApprovalPolicy, ChangeRequest, FreezeWindow

S = ChangeRequest.State
APPROVE_DUTIES = frozenset({duties.APPROVE, duties.SECURITY_APPROVE})
ACTIONS = ("submit", "approve", "reject", "deploy")
DEFAULT_POLICY = ApprovalPolicy(min_approvals=1)


@dataclass(frozen=True)
class PolicyContext:
    """Everything a decision needs, loaded up front."""

    change_request: ChangeRequest
    policy: ApprovalPolicy | None
    actor_is_contributor: bool
    approvals: tuple[Approval, ...]
    actor: object
    actor_duties: frozenset[str]
    actor_is_team_member: bool
    active_freezes: tuple[FreezeWindow, ...] = ()
    prior_environment_slug: str | None = None
    prior_environment_deployed: bool = True

    @property
    def effective_policy(self) -> ApprovalPolicy:
        return self.policy or DEFAULT_POLICY


@dataclass(frozen=True)
class ApprovalStatus:
    required: int
    required_security: int
    team_reviewer_required: bool
    valid: tuple[Approval, ...]
    expired: tuple[Approval, ...]
    security: int
    team_reviewer_present: bool

    @property
    def met(self) -> bool:
        return (
            len({a.reviewer_id or f"auto-{a.pk}" for a in self.valid}) >= self.required
            and self.security >= self.required_security
            and (not self.team_reviewer_required or self.team_reviewer_present or self.required == 0)
        )

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


def approval_status(ctx: PolicyContext, at: datetime) -> ApprovalStatus:
    """C3, C4, C10: which approvals of the current revision still count, and whether they suffice."""
    cr, policy = ctx.change_request, ctx.effective_policy
    required = policy.emergency_min_approvals if cr.is_emergency else policy.min_approvals
    required_security = policy.min_security_approvals
    if cr.risk == ChangeRequest.Risk.HIGH:
        required_security = max(required_security, policy.high_risk_security_approvals)
    if cr.change_type == ChangeRequest.ChangeType.STANDARD and any(
        a.via == Approval.Via.AUTO for a in _current(ctx)
    ):
        required_security = 0  # C9: the policy itself approved a standard low-risk change
    ttl = timedelta(hours=policy.approval_ttl_hours) if policy.approval_ttl_hours else None
    current = [a for a in _current(ctx) if a.decision == Approval.Decision.APPROVED]
    valid = tuple(a for a in current if ttl is None or a.created_at > at - ttl)
    expired = tuple(a for a in current if a not in valid)
    return ApprovalStatus(
        required=required,
        required_security=required_security,
        team_reviewer_required=policy.team_reviewer_required,
        valid=valid,
        expired=expired,
        security=sum(1 for a in valid if a.is_security),
        team_reviewer_present=any(a.is_team_member for a in valid),
    )


def _current(ctx: PolicyContext) -> list[Approval]:
    revision = ctx.change_request.revision
    return [a for a in ctx.approvals if a.revision == revision and not a.stale]


def auto_approvable(ctx: PolicyContext) -> bool:
    """C9: standard, low-risk changes where the policy allows it."""
    cr = ctx.change_request
    return (
        ctx.effective_policy.allow_auto_approve_standard
        and cr.change_type == ChangeRequest.ChangeType.STANDARD
        and cr.risk == ChangeRequest.Risk.LOW
    )


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


def _is_approver(ctx: PolicyContext) -> bool:
    return any(
        a.reviewer_id == ctx.actor.pk and a.decision == Approval.Decision.APPROVED for a in ctx.approvals
    )


def article(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _state_reason(cr: ChangeRequest, action: str) -> Reason:
    return Reason("invalid_state", f"{article(cr.state).capitalize()} change request cannot be {_PAST[action]}.")


_PAST = {"submit": "submitted", "approve": "approved", "reject": "rejected", "deploy": "deployed"}


def _submit(ctx: PolicyContext, at: datetime) -> list[Reason]:
    cr, reasons = ctx.change_request, []
    if cr.state != S.DRAFT:
        reasons.append(_state_reason(cr, "submit"))
    if duties.SUBMIT not in ctx.actor_duties:
        reasons.append(Reason("missing_duty", f"You do not hold submit for {cr.environment.slug}."))
    if ctx.actor.pk != cr.author_id:
        reasons.append(Reason("not_author", "Only the author submits a change request."))
    return reasons


def _decide(ctx: PolicyContext, at: datetime, action: str, via: str) -> list[Reason]:
    cr, reasons = ctx.change_request, []
    if cr.state != S.PENDING:
        reasons.append(_state_reason(cr, action))
    if not (APPROVE_DUTIES & ctx.actor_duties):
        reasons.append(Reason("missing_duty", f"You do not hold approve for {cr.environment.slug}."))
    if ctx.actor.pk == cr.author_id:
        reasons.append(Reason("author_cannot_approve", "The author of a change may not approve or reject it."))
    if ctx.actor_is_contributor:
        reasons.append(
            Reason("contributor_cannot_approve", "A contributor to a change may not approve or reject it.")
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
    return reasons


def _deploy(ctx: PolicyContext, at: datetime) -> list[Reason]:
    cr, policy, reasons = ctx.change_request, ctx.effective_policy, []
    status = approval_status(ctx, at)
    if cr.state in (S.DRAFT, S.PENDING, S.REJECTED):
        reasons.append(Reason("not_approved", f"The change request is {cr.state}, not approved."))
    elif cr.state != S.APPROVED:
        reasons.append(_state_reason(cr, "deploy"))
    elif not status.met and status.expired:
        reasons.append(
            Reason(
                "approvals_expired",
                f"Approvals older than {policy.approval_ttl_hours} hours no longer count; ask for a new review.",
            )
        )
    elif not status.met:
        reasons.append(
            Reason(
                "approvals_insufficient",
                f"The policy of {cr.environment.slug} now asks for more approvals than this change has "
                f"({status.count} of {status.required}, {status.security} of {status.required_security} security).",
            )
        )
    if duties.DEPLOY not in ctx.actor_duties:
        reasons.append(Reason("missing_duty", f"You do not hold deploy for {cr.environment.slug}."))
    if ctx.actor.pk == cr.author_id:
        reasons.append(Reason("author_cannot_deploy", "The author of a change may not deploy it."))
    if ctx.actor_is_contributor:
        reasons.append(Reason("contributor_cannot_deploy", "A contributor to a change may not deploy it."))
    if _is_approver(ctx):
        reasons.append(Reason("approver_cannot_deploy", "Whoever approved a change may not deploy it."))
    if ctx.active_freezes:
        if not (cr.is_emergency and status.security >= 1):
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
    return reasons


def requirements(ctx: PolicyContext, at: datetime) -> dict:
    """What the policy asks of this change and how far it has got: the portal's checklist and the
    gate endpoint's ``requirements``."""
    status = approval_status(ctx, at)
    policy = ctx.effective_policy
    return {
        "approvals": {"required": status.required, "valid": status.count, "expired": len(status.expired)},
        "security_approvals": {"required": status.required_security, "valid": status.security},
        "team_reviewer": {"required": status.team_reviewer_required, "present": status.team_reviewer_present},
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
    elif action in ("approve", "reject"):
        reasons = _decide(ctx, at, action, via)
    elif action == "deploy":
        reasons = _deploy(ctx, at)
    else:
        raise ValueError(f"Unknown action {action!r}; expected one of {ACTIONS}.")
    return Decision(not reasons, action, tuple(reasons), requirements(ctx, at))
