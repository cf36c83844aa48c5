"""The datasets of an evidence bundle: which rows (the population), which columns, and which rows
are exceptions an auditor should look at.

Every population is read as plain tuples (``values_list``, the joined slugs and usernames in the
same SELECT) with ``.iterator(chunk_size=EVIDENCE_BATCH_SIZE)``: a million rows must build neither
a million model instances nor a related manager per row. ``Dataset.rows`` receives the whole
batch; the few related rows it needs (a change's approvals and contributors) come in one query per
batch each, and the small lookup tables (policy versions, roles, environments, grants held under
SoD exceptions) are read once per export (``load_policy_history``). So the number of queries per
batch is constant and the per-row work is dictionary lookups.

Period rule (the same for every dataset): a timestamp is *in the period* when
``period_start 00:00 UTC <= t < (period_end + 1 day) 00:00 UTC``. Which timestamp(s) place a row in
the period is said in each dataset's ``population``.

This module reads other apps' models, never writes them (ARCHITECTURE principle 5).
"""
import json
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from compliance.evidence.control_history import BELOW_BASELINE, WEAKENED, ControlHistory, PolicyBaseline
from compliance.evidence.control_history import load as load_controls
from compliance.evidence.writer import iso
from audit.models import Alert, AuditEvent
from governance import duties
from governance.controls.registry import Scope
from governance.models import (
    AccessReviewItem, ConflictRule, ControlChange, Environment, Role, RoleAssignment, RoleDuty, SoDException,
)
from releases.models import Approval, ApprovalPolicy, ChangeRequest, Deployment, RevisionContributor


@dataclass
class Context:
    """What every dataset of one export shares: the period and facts read once at the start."""

    start: datetime
    end: datetime
    generated_at: datetime
    head_sequence: int
    # environment id -> ([history_date, …], [(policy, source), …], (policy, source) before the first), oldest first
    policy_history: dict = field(default_factory=dict)
    environment_slugs: dict = field(default_factory=dict)
    production_environments: set = field(default_factory=set)
    has_production: bool = False
    roles: dict = field(default_factory=dict)  # role id -> (is_privileged, holds an environment duty)
    exception_grants: dict = field(default_factory=dict)  # user id -> grants held under an SoD exception
    verification_rows: list = field(default_factory=list)
    # the controls while each deployment was decided (K7): see load_control_history
    control_history: ControlHistory = field(default_factory=ControlHistory)

    def in_period(self, field_name: str) -> Q:
        return Q(**{f"{field_name}__gte": self.start, f"{field_name}__lt": self.end})


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    population: str  # which rows, in words (the query itself goes into the manifest too)
    columns: tuple[tuple[str, str], ...]  # (name, meaning)
    queryset: Callable[[Context], QuerySet] | None
    rows: Callable[[Context, list], list[dict]]
    # Exception kinds: name -> predicate on a row. A row is an exception when any predicate holds.
    exceptions: dict[str, Callable[[dict], bool]] = field(default_factory=dict)
    computed: Callable[[Context], list] | None = None  # rows not read from a queryset
    json_columns: tuple[str, ...] = ()  # free-form JSON: written as compact JSON text in the CSV

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]


def _user(user) -> str | None:
    return user.username if user is not None else None


def _environment_name(environment) -> str:
    return environment.slug if environment is not None else "all"


# --- Deployments (SOX ITGC-CM, ISO A.8.32 / A.5.3) ------------------------------------------------

POLICY_FIELDS = (
    "min_approvals", "min_security_approvals", "high_risk_security_approvals", "team_reviewer_required",
    "approval_ttl_hours", "allow_auto_approve_standard", "require_prior_environment", "deploy_weekdays",
    "deploy_window_start", "deploy_window_end", "emergency_min_approvals", "pir_due_hours",
    "require_interactive_signoff",
)


def _policy_version(ctx: Context, version, source: str) -> tuple[dict | None, str]:
    """One recorded policy version as the row shows it (built once per version, shared by rows)."""
    if version.history_type == "-":
        return None, f"none: policy deleted on {version.history_date.isoformat()}"
    policy = {}
    for name in POLICY_FIELDS:
        if name == "require_prior_environment":
            prior = version.require_prior_environment_id
            policy[name] = ctx.environment_slugs.get(prior, prior) if prior else None
        else:
            value = getattr(version, name)
            policy[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return policy, source


def load_policy_history(ctx: Context) -> None:
    """The small lookup tables every batch needs, read once per export (a handful of queries
    whatever the period): environments, roles and their duties, the grants held under an SoD
    exception, and every recorded version of every approval policy (django-simple-history; one row
    per policy edit), each already rendered as the row shows it."""
    ctx.environment_slugs = {}
    ctx.production_environments = set()
    for pk, slug, tier in Environment.objects.values_list("pk", "slug", "tier"):
        ctx.environment_slugs[pk] = slug
        if tier == Environment.Tier.PRODUCTION:
            ctx.production_environments.add(pk)
    ctx.has_production = bool(ctx.production_environments)
    environment_duties = {}
    for role_id, duty in RoleDuty.objects.values_list("role_id", "duty"):
        environment_duties[role_id] = environment_duties.get(role_id, False) or duty in duties.ENVIRONMENT_DUTIES
    ctx.roles = {pk: (privileged, environment_duties.get(pk, False))
                 for pk, privileged in Role.objects.values_list("pk", "is_privileged")}
    ctx.exception_grants = _exception_grants()
    history: dict[int, list] = {}
    for row in ApprovalPolicy.history.order_by("history_date", "history_id").iterator():
        history.setdefault(row.environment_id, []).append(row)
    ctx.policy_history = {}
    for environment_id, versions in history.items():
        oldest = versions[0]
        ctx.policy_history[environment_id] = (
            [v.history_date for v in versions],
            [_policy_version(ctx, v, f"policy version of {v.history_date.isoformat()} (in force at deploy)")
             for v in versions],
            _policy_version(ctx, oldest, f"oldest recorded policy version, of {oldest.history_date.isoformat()} "
                                         "(recorded after the deploy)"),
        )


NO_POLICY = (None, "none: no approval policy recorded for this environment (nothing required)")


def policy_at(ctx: Context, environment_id: int, at: datetime) -> tuple[dict | None, str]:
    """The environment's approval policy as recorded at ``at``, and where that answer comes from.

    The policy is versioned by django-simple-history (``history_date`` is when an edit was saved).
    No snapshot is stored on the deployment itself, so the version in force at the deployment's
    start (the last one saved at or before it) is looked up; when the oldest recorded version is
    younger than the deployment (data loaded with back-dated times, or history enabled later),
    that oldest version is given and the source says so."""
    found = ctx.policy_history.get(environment_id)
    if found is None:
        return NO_POLICY
    dates, versions, before_first = found
    index = bisect_right(dates, at)
    return versions[index - 1] if index else before_first


def load_control_history(ctx: Context, baseline: PolicyBaseline | None) -> None:
    """After ``load_policy_history``: the windows in which a control was weaker than at the
    period's start, and each policy version judged against the framework's ``baseline`` (one
    query, once per export; ``compliance.evidence.control_history``)."""
    ctx.control_history = load_controls(
        start=ctx.start, end=ctx.end, policy_history=ctx.policy_history,
        production_environments=ctx.production_environments, environment_slugs=ctx.environment_slugs,
        baseline=baseline,
    )


def control_findings(ctx: Context, environment_id: int, environment: str, at: datetime) -> list[str]:
    """K7: a deployment started while a control concerning it was weaker than at the period's
    start (``control_weakened``), or under a policy below the framework's baseline (``below_baseline``)."""
    history = ctx.control_history
    return (history.weakened_at(environment, at)
            + history.below_baseline_at(ctx.policy_history, environment_id, at))


# The population query of the deployment datasets: one tuple per deployment, in this order.
DEPLOYMENT_FIELDS = (
    "pk", "change_request_id", "change_request__title", "change_request__team__slug", "environment_id",
    "environment__slug", "environment__tier", "change_request__ticket_url", "artifact", "revision",
    "change_request__change_type", "change_request__risk", "change_request__author_id",
    "change_request__author__username", "deployer_id", "deployer__username", "state",
    "change_request__created_at", "change_request__submitted_at", "change_request__approved_at", "started_at",
    "finished_at", "rolled_back_at", "pipeline_url", "change_request__pir_due_at",
    "change_request__pir_by__username", "change_request__pir_at",
)


def _deployments(production_only: bool) -> Callable[[Context], QuerySet]:
    def queryset(ctx: Context) -> QuerySet:
        qs = Deployment.objects.filter(ctx.in_period("started_at"))
        if production_only:
            qs = qs.filter(environment__tier=Environment.Tier.PRODUCTION)
        return qs.order_by("started_at", "pk").values_list(*DEPLOYMENT_FIELDS)

    return queryset


def _exception_grants() -> dict[int, list[tuple]]:
    """Every grant held under an SoD exception, by user: (environment id, exception id,
    approved_at, expires_at, ended_at). One query per export: exceptions are rare by design, so
    this stays small however long the period."""
    found: dict[int, list[tuple]] = {}
    rows = RoleAssignment.objects.filter(sod_exception__isnull=False).order_by("pk").values_list(
        "user_id", "environment_id", "sod_exception_id", "approved_at", "expires_at", "ended_at"
    )
    for user_id, *grant in rows:
        found.setdefault(user_id, []).append(tuple(grant))
    return found


def _under_exception(grants: dict, user_id, environment_id, at) -> list[int]:
    """Ids of the SoD exceptions under which ``user_id`` held a grant for the environment at ``at``."""
    held = []
    for grant_environment, exception_id, approved_at, expires_at, ended_at in grants.get(user_id, ()):
        in_scope = grant_environment in (None, environment_id)
        in_force = (
            approved_at is not None and approved_at <= at
            and (expires_at is None or expires_at > at)
            and (ended_at is None or ended_at > at)
        )
        if in_scope and in_force:
            held.append(exception_id)
    return sorted(set(held))


EMERGENCY = ChangeRequest.ChangeType.EMERGENCY
STANDARD = ChangeRequest.ChangeType.STANDARD
HIGH_RISK = ChangeRequest.Risk.HIGH
SUCCEEDED = Deployment.State.SUCCEEDED
AUTO = Approval.Via.AUTO


def _pir(emergency: bool, pir_at, pir_due_at, state: str, now: datetime) -> str:
    if not emergency:
        return "not_required"
    if pir_at is not None:
        return "done_late" if pir_due_at and pir_at > pir_due_at else "done"
    if pir_due_at is None:
        return "not_due" if state != SUCCEEDED else "pending"
    return "overdue" if now > pir_due_at else "pending"


# An approval of a batch, as read (see _approvals_of): its position in this tuple.
A_REVIEWER_ID, A_USERNAME, A_SECURITY, A_TEAM_MEMBER, A_VIA, A_AT = range(6)


def _policy_findings(emergency: bool, risk: str, change_type: str, approvers: list[tuple],
                     policy: dict | None) -> list[str]:
    if policy is None:
        return []
    required = policy["emergency_min_approvals"] if emergency else policy["min_approvals"]
    required_security = policy["min_security_approvals"]
    if risk == HIGH_RISK:
        required_security = max(required_security, policy["high_risk_security_approvals"])
    auto = any(a[A_VIA] == AUTO for a in approvers)
    if auto and change_type == STANDARD:
        required_security = 0
    findings = []
    if len(approvers) < required:
        findings.append(f"approvals_below_policy ({len(approvers)} of {required})")
    security = sum(1 for a in approvers if a[A_SECURITY])
    if security < required_security:
        findings.append(f"security_approvals_below_policy ({security} of {required_security})")
    if policy["team_reviewer_required"] and not auto and not any(a[A_TEAM_MEMBER] for a in approvers):
        findings.append("no_team_reviewer")
    return findings


def _approvals_of(change_ids) -> dict[tuple[int, int], list[tuple]]:
    """The approving decisions of the batch's changes (one query), by (change id, revision), in
    decision order."""
    found: dict[tuple[int, int], list[tuple]] = {}
    rows = (
        Approval.objects.filter(change_request_id__in=change_ids, decision=Approval.Decision.APPROVED)
        .order_by("created_at", "pk")
        .values_list("change_request_id", "revision", "reviewer_id", "reviewer__username", "is_security",
                     "is_team_member", "via", "created_at")
    )
    for change_id, revision, *approval in rows:
        found.setdefault((change_id, revision), []).append(approval)
    return found


def _contributors_of(change_ids) -> dict[int, tuple[list[str], set[int]]]:
    """Everyone listed as a contributor of any revision of the batch's changes (one query):
    (usernames sorted, user ids) by change id. A contributor removed in a later revision stays:
    they stay barred from approving and deploying the change (C2, C5)."""
    found: dict[int, tuple[list[str], set[int]]] = {}
    rows = (
        RevisionContributor.objects.filter(change_request_id__in=change_ids)
        .order_by()
        .values_list("change_request_id", "user_id", "user__username")
        .distinct()
    )
    for change_id, user_id, username in rows:
        names, ids = found.setdefault(change_id, ([], set()))
        names.append(username)
        ids.add(user_id)
    for names, _ in found.values():
        names.sort()
    return found


NO_CONTRIBUTORS = ([], frozenset())


def deployment_rows(ctx: Context, batch: list[tuple]) -> list[dict]:
    change_ids = {d[1] for d in batch}
    approvals = _approvals_of(change_ids)
    contributors = _contributors_of(change_ids)
    grants = ctx.exception_grants
    now = ctx.generated_at
    rows = []
    for (
        pk, change_id, title, team, environment_id, environment, tier, ticket_url, artifact, revision,
        change_type, risk, author_id, author, deployer_id, deployer, state, created_at, submitted_at,
        approved_at, started_at, finished_at, rolled_back_at, pipeline_url, pir_due_at, pir_by, pir_at,
    ) in batch:
        contributor_names, contributor_ids = contributors.get(change_id, NO_CONTRIBUTORS)
        approvers = approvals.get((change_id, revision), ())
        approver_ids = {a[A_REVIEWER_ID] for a in approvers if a[A_REVIEWER_ID]}
        sod = []
        if author_id in approver_ids:
            sod.append("author_approved")
        if contributor_ids and contributor_ids & approver_ids:
            sod.append("contributor_approved")
        if deployer_id == author_id:
            sod.append("deployer_is_author")
        if deployer_id in contributor_ids:
            sod.append("deployer_is_contributor")
        if deployer_id in approver_ids:
            sod.append("deployer_approved")
        exceptions = []
        if grants:
            for a in approvers:
                if a[A_REVIEWER_ID] in grants:
                    for exc in _under_exception(grants, a[A_REVIEWER_ID], environment_id, a[A_AT]):
                        exceptions.append(f"approver {a[A_USERNAME]} under SoD exception #{exc}")
            for exc in _under_exception(grants, deployer_id, environment_id, started_at):
                exceptions.append(f"deployer {deployer} under SoD exception #{exc}")
            for exc in _under_exception(grants, author_id, environment_id, created_at):
                exceptions.append(f"author {author} under SoD exception #{exc}")
        verdict = "violation" if sod else ("exception" if exceptions else "pass")
        policy, policy_source = policy_at(ctx, environment_id, started_at)
        emergency = change_type == EMERGENCY
        rows.append({
            "deployment_id": pk,
            "change_id": f"CR-{change_id}",
            "change_title": title,
            "team": team,
            "environment": environment,
            "environment_tier": tier,
            "ticket_url": ticket_url,
            "artifact": artifact,
            "revision": revision,
            "change_type": change_type,
            "risk": risk,
            "emergency": emergency,
            "author": author,
            "contributors": contributor_names,
            "approvers": [
                {
                    "username": a[A_USERNAME] if a[A_REVIEWER_ID] else "system (policy)",
                    "role": "security_approve" if a[A_SECURITY] else ("auto" if a[A_VIA] == AUTO else "approve"),
                    "team_member": a[A_TEAM_MEMBER],
                    "via": a[A_VIA],
                    "at": iso(a[A_AT]),
                }
                for a in approvers
            ],
            "deployer": deployer,
            "deployment_state": state,
            "change_created_at": iso(created_at),
            "change_submitted_at": iso(submitted_at),
            "change_approved_at": iso(approved_at),
            "deploy_started_at": iso(started_at),
            "deploy_finished_at": iso(finished_at),
            "rolled_back_at": iso(rolled_back_at),
            "pipeline_url": pipeline_url,
            "pir_status": _pir(emergency, pir_at, pir_due_at, state, now),
            "pir_due_at": iso(pir_due_at),
            "pir_by": pir_by,
            "pir_at": iso(pir_at),
            "policy_at_deploy": policy,
            "policy_source": policy_source,
            "policy_findings": _policy_findings(emergency, risk, change_type, approvers, policy),
            "sod_verdict": verdict,
            "sod_findings": sod + exceptions,
            "control_findings": control_findings(ctx, environment_id, environment, started_at),
        })
    return rows


DEPLOYMENT_COLUMNS = (
    ("deployment_id", "Deployment number."),
    ("change_id", "The change request (CR-<id>)."),
    ("change_title", "Title of the change request."),
    ("team", "Team that owns the change."),
    ("environment", "Target environment (slug)."),
    ("environment_tier", "development, staging or production."),
    ("ticket_url", "Ticket linked to the change."),
    ("artifact", "What was deployed (image digest, commit, version)."),
    ("revision", "Revision of the change that was deployed."),
    ("change_type", "standard, normal or emergency."),
    ("risk", "low, medium or high."),
    ("emergency", "true for an emergency change."),
    ("author", "Who wrote the change."),
    ("contributors", "Everyone listed as a contributor (commit author) in any revision of the change, "
                     "including those a later revision no longer lists."),
    ("approvers", "Approvals of the deployed revision: username, role (approve, security_approve, auto), "
                  "team_member, via (portal, api, auto), at."),
    ("deployer", "Who started the deployment."),
    ("deployment_state", "running, succeeded, failed or rolled_back (at export time)."),
    ("change_created_at", "When the change request was opened."),
    ("change_submitted_at", "When it was submitted for review."),
    ("change_approved_at", "When its policy was met."),
    ("deploy_started_at", "When the deployment started (this places the row in the period)."),
    ("deploy_finished_at", "When its outcome was reported."),
    ("rolled_back_at", "When it was rolled back, if it was."),
    ("pipeline_url", "CI/CD run that deployed it."),
    ("pir_status", "Post-implementation review: not_required, not_due, pending, done, done_late, overdue."),
    ("pir_due_at", "When the review of an emergency change is due."),
    ("pir_by", "Who reviewed it."),
    ("pir_at", "When it was reviewed."),
    ("policy_at_deploy", "The environment's approval policy at deploy time, from the policy's recorded history "
                         "(no snapshot is stored on the deployment); see policy_source."),
    ("policy_source", "Which recorded policy version policy_at_deploy is."),
    ("policy_findings", "Where the deployed revision's approvals fall short of that policy."),
    ("sod_verdict", "pass; exception (a participant held their duty under an SoD exception); violation "
                    "(author, contributor, approver and deployer not all distinct)."),
    ("sod_findings", "What the verdict found."),
    ("control_findings", "control_weakened: the deployment started while a control concerning its environment "
                         "(or every environment) was weaker than at the period's start — which control, why, and "
                         "the control change that weakened it (see control_changes); below_baseline: the policy "
                         "at deploy time is weaker than the framework's baseline for production."),
)

DEPLOYMENT_EXCEPTIONS = {
    "sod_violation": lambda r: r["sod_verdict"] == "violation",
    "sod_exception": lambda r: r["sod_verdict"] == "exception",
    "policy_not_met": lambda r: bool(r["policy_findings"]),
    "pir_overdue": lambda r: r["pir_status"] in ("overdue", "done_late"),
    "control_weakened": lambda r: any(f.startswith(WEAKENED) for f in r["control_findings"]),
    "below_baseline": lambda r: any(f.startswith(BELOW_BASELINE) for f in r["control_findings"]),
}

PRODUCTION_DEPLOYMENTS = Dataset(
    name="production_deployments",
    title="Production deployments",
    population="Every deployment to a production-tier environment whose deploy_started_at is in the period "
               "(whatever its outcome).",
    columns=DEPLOYMENT_COLUMNS,
    queryset=_deployments(production_only=True),
    rows=deployment_rows,
    exceptions=DEPLOYMENT_EXCEPTIONS,
)

CHANGES = Dataset(
    name="changes",
    title="Changes deployed (all environments)",
    population="Every deployment to any environment whose deploy_started_at is in the period.",
    columns=DEPLOYMENT_COLUMNS,
    queryset=_deployments(production_only=False),
    rows=deployment_rows,
    exceptions=DEPLOYMENT_EXCEPTIONS,
)


# --- Role grants (SOX ITGC-AC, HIPAA 164.308(a)(4), ISO A.5.18) -----------------------------------


GRANT_FIELDS = (
    "pk", "user_id", "user__username", "user__is_active", "role_id", "role__slug", "team__slug", "environment_id",
    "environment__slug", "status", "justification", "requested_by_id", "requested_by__username", "created_at",
    "approved_by_id", "approved_by__username", "approved_at", "expires_at", "ended_at", "ended_by__username",
    "end_reason", "sod_exception_id",
)


def _grant_queryset(ctx: Context) -> QuerySet:
    return (
        RoleAssignment.objects.filter(ctx.in_period("created_at") | ctx.in_period("approved_at") | ctx.in_period("ended_at"))
        .order_by("created_at", "pk")
        .values_list(*GRANT_FIELDS)
    )


def _privileged(ctx: Context, role_id: int, environment_id: int | None) -> bool:
    privileged, environment_duty = ctx.roles.get(role_id, (False, False))
    if privileged:
        return True
    if not environment_duty:
        return False
    return environment_id in ctx.production_environments if environment_id else ctx.has_production


OPEN_STATUSES = (RoleAssignment.Status.ACTIVE, RoleAssignment.Status.PENDING)


def grant_rows(ctx: Context, batch: list[tuple]) -> list[dict]:
    rows = []
    start, end = ctx.start, ctx.end
    for (
        pk, user_id, username, user_active, role_id, role, team, environment_id, environment, status,
        justification, requested_by_id, requested_by, created_at, approved_by_id, approved_by, approved_at,
        expires_at, ended_at, ended_by, end_reason, sod_exception_id,
    ) in batch:
        privileged = _privileged(ctx, role_id, environment_id)
        activity = [
            name for name, at in (("requested", created_at), ("approved", approved_at), ("ended", ended_at))
            if at is not None and start <= at < end
        ]
        findings = []
        if requested_by_id is None:
            findings.append("no_requester (bootstrapped grant)")
        elif requested_by_id == user_id:
            findings.append("self_granted")
        if approved_by_id is not None and approved_by_id in (user_id, requested_by_id):
            findings.append("approver_not_independent")
        if privileged and approved_at is not None and approved_by_id is None:
            findings.append("privileged_without_second_approver")
        if privileged and expires_at is None and status in OPEN_STATUSES:
            findings.append("privileged_without_expiry")
        rows.append({
            "grant_id": pk,
            "grantee": username,
            "grantee_active": user_active,
            "role": role,
            "privileged": privileged,
            "team": team,
            "environment": environment if environment_id is not None else "all",
            "status": status,
            "justification": justification,
            "requested_by": requested_by,
            "requested_at": iso(created_at),
            "approved_by": approved_by,
            "approved_at": iso(approved_at),
            "expires_at": iso(expires_at),
            "ended_at": iso(ended_at),
            "ended_by": ended_by,
            "end_reason": end_reason,
            "sod_exception_id": sod_exception_id,
            "activity_in_period": activity,
            "findings": findings,
        })
    return rows


ROLE_GRANTS = Dataset(
    name="role_grants",
    title="Role grants and revocations",
    population="Every role assignment requested (created_at), approved (approved_at) or ended — revoked, "
               "rejected or expired — (ended_at) in the period.",
    columns=(
        ("grant_id", "Role assignment number."),
        ("grantee", "Who holds (or asked for) the role."),
        ("grantee_active", "Whether the grantee's account is enabled at export time."),
        ("role", "Role slug."),
        ("privileged", "A duty on production, or the security or manager role (needs four eyes and an expiry)."),
        ("team", "Team the grant is held in."),
        ("environment", "Environment slug, or all."),
        ("status", "pending, active, rejected, revoked or expired (at export time)."),
        ("justification", "Why it was asked for."),
        ("requested_by", "Who requested it (empty: bootstrapped at installation)."),
        ("requested_at", "When it was requested."),
        ("approved_by", "Second approver of a privileged grant (empty when none was needed)."),
        ("approved_at", "When it came into force."),
        ("expires_at", "When it expires."),
        ("ended_at", "When it was revoked, rejected or expired."),
        ("ended_by", "Who ended it (empty: the system)."),
        ("end_reason", "Why it ended."),
        ("sod_exception_id", "The SoD exception it is held under, if any."),
        ("activity_in_period", "Which of requested / approved / ended happened in the period."),
        ("findings", "self_granted, approver_not_independent, privileged_without_second_approver, "
                     "privileged_without_expiry, no_requester."),
    ),
    queryset=_grant_queryset,
    rows=grant_rows,
    exceptions={"grant_findings": lambda r: bool(r["findings"])},
)


# --- Access reviews (SOX ITGC-AC, HIPAA 164.308(a)(4), ISO A.5.18) --------------------------------


REVIEW_FIELDS = (
    "review_id", "review__name", "review__period", "review__team_id", "review__team__slug", "review__status",
    "review__created_at", "review__due_at", "review__closed_at", "review__undecided_policy", "pk", "assignment_id",
    "assignment__user_id", "assignment__user__username", "assignment__role__slug", "assignment__team__slug",
    "assignment__environment_id", "assignment__environment__slug", "assignment__status", "reviewer__username",
    "reviewer_is_security", "recommendations", "due_at", "decision", "decided_by_id", "decided_by__username",
    "decided_at", "comment", "escalated_at",
)


def _review_queryset(ctx: Context) -> QuerySet:
    return (
        AccessReviewItem.objects.filter(review__created_at__lt=ctx.end)
        .filter(Q(review__closed_at__isnull=True) | Q(review__closed_at__gte=ctx.start))
        .order_by("review__created_at", "review_id", "pk")
        .values_list(*REVIEW_FIELDS)
    )


def review_rows(ctx: Context, batch: list[tuple]) -> list[dict]:
    rows = []
    now = ctx.generated_at
    for (
        review_id, name, review_period, team_id, team, review_status, review_created_at, review_due_at,
        review_closed_at, undecided_policy, pk, grant_id, grantee_id, grantee, role, grant_team, environment_id,
        environment, grant_status, reviewer, reviewer_is_security, recommendations, due_at, decision,
        decided_by_id, decided_by, decided_at, comment, escalated_at,
    ) in batch:
        findings = []
        if not decision:
            if due_at < now:
                findings.append("undecided_past_due")
        elif decided_at and decided_at > due_at:
            findings.append("decided_late")
        if decided_by_id is not None and decided_by_id == grantee_id:
            findings.append("grantee_decided_own_grant")
        rows.append({
            "campaign_id": review_id,
            "campaign": name,
            "campaign_period": review_period,
            "campaign_team": team if team_id else "all",
            "campaign_status": review_status,
            "campaign_started_at": iso(review_created_at),
            "campaign_due_at": iso(review_due_at),
            "campaign_closed_at": iso(review_closed_at),
            "undecided_policy": undecided_policy,
            "item_id": pk,
            "grant_id": grant_id,
            "grantee": grantee,
            "role": role,
            "team": grant_team,
            "environment": environment if environment_id is not None else "all",
            "grant_status": grant_status,
            "reviewer": reviewer,
            "reviewer_is_security": reviewer_is_security,
            "recommendations": [r.get("code", str(r)) if isinstance(r, dict) else str(r) for r in recommendations or []],
            "item_due_at": iso(due_at),
            "decision": decision,
            "decided_by": decided_by,
            "decided_at": iso(decided_at),
            "comment": comment,
            "escalated_at": iso(escalated_at),
            "findings": findings,
        })
    return rows


ACCESS_REVIEWS = Dataset(
    name="access_reviews",
    title="Access review campaigns and decisions",
    population="Every item (one per grant reviewed) of every access review campaign open at some time in the "
               "period: started before the period ends and not closed before it starts.",
    columns=(
        ("campaign_id", "Campaign number."),
        ("campaign", "Campaign name."),
        ("campaign_period", "The period the campaign covers (e.g. 2026-Q1)."),
        ("campaign_team", "Team reviewed, or all."),
        ("campaign_status", "building, open or closed (at export time)."),
        ("campaign_started_at", "When the campaign started."),
        ("campaign_due_at", "When decisions were due."),
        ("campaign_closed_at", "When it closed."),
        ("undecided_policy", "What happens to undecided grants at close: revoke or escalate."),
        ("item_id", "Review item number."),
        ("grant_id", "The role assignment reviewed."),
        ("grantee", "Who holds it."),
        ("role", "Role slug."),
        ("team", "Team it is held in."),
        ("environment", "Environment slug, or all."),
        ("grant_status", "The grant's status at export time."),
        ("reviewer", "Who was asked to decide."),
        ("reviewer_is_security", "Security reviewed it because no manager other than the grantee could."),
        ("recommendations", "unused, no_expiry, inactive_user, sod_exception, outlier."),
        ("item_due_at", "When the decision was due."),
        ("decision", "keep, revoke, or empty (undecided)."),
        ("decided_by", "Who decided."),
        ("decided_at", "When."),
        ("comment", "The reviewer's comment."),
        ("escalated_at", "When an undecided item was escalated."),
        ("findings", "undecided_past_due, decided_late, grantee_decided_own_grant."),
    ),
    queryset=_review_queryset,
    rows=review_rows,
    exceptions={"review_findings": lambda r: bool(r["findings"])},
)


# --- Leavers (SOX ITGC-AC) -----------------------------------------------------------------------


LEAVER_FIELDS = (
    "user__username", "user__email", "user__last_login", "user__date_joined", "pk", "role__slug", "team__slug",
    "environment_id", "environment__slug", "status", "approved_at", "created_at", "expires_at", "ended_at",
    "ended_by__username", "end_reason",
)


def _leaver_queryset(ctx: Context) -> QuerySet:
    return (
        RoleAssignment.objects.filter(user__is_active=False, created_at__lt=ctx.end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=ctx.start))
        .order_by("user__username", "pk")
        .values_list(*LEAVER_FIELDS)
    )


def leaver_rows(ctx: Context, batch: list[tuple]) -> list[dict]:
    rows = []
    for (
        username, email, last_login, date_joined, pk, role, team, environment_id, environment, status, approved_at,
        created_at, expires_at, ended_at, ended_by, end_reason,
    ) in batch:
        open_grant = ended_at is None and status in OPEN_STATUSES
        rows.append({
            "user": username,
            "email": email,
            "last_login": iso(last_login),
            "date_joined": iso(date_joined),
            "grant_id": pk,
            "role": role,
            "team": team,
            "environment": environment if environment_id is not None else "all",
            "grant_status": status,
            "granted_at": iso(approved_at or created_at),
            "expires_at": iso(expires_at),
            "grant_ended_at": iso(ended_at),
            "ended_by": ended_by,
            "end_reason": end_reason,
            "findings": ["grant_not_ended"] if open_grant else [],
        })
    return rows


LEAVERS = Dataset(
    name="leavers",
    title="Leavers (deactivated accounts) and the end of their grants",
    population="Every role assignment of an account that is deactivated at export time and that was in force "
               "or pending at some time in the period (created before the period ends, not ended before it "
               "starts). The user model records no deactivation time; last_login is given instead. A "
               "deactivated account holds no duty whatever its grants say (every check reads is_active), "
               "but a grant left open is reported as a finding.",
    columns=(
        ("user", "The deactivated account."),
        ("email", "Its e-mail address."),
        ("last_login", "Its last login."),
        ("date_joined", "When the account was created."),
        ("grant_id", "Role assignment number."),
        ("role", "Role slug."),
        ("team", "Team it was held in."),
        ("environment", "Environment slug, or all."),
        ("grant_status", "Status at export time."),
        ("granted_at", "When it came into force."),
        ("expires_at", "When it expires."),
        ("grant_ended_at", "When the grant ended (revoked, rejected or expired)."),
        ("ended_by", "Who ended it (empty: the system)."),
        ("end_reason", "Why."),
        ("findings", "grant_not_ended: the grant is still active or pending."),
    ),
    queryset=_leaver_queryset,
    rows=leaver_rows,
    exceptions={"grant_not_ended": lambda r: bool(r["findings"])},
)


# --- Audit events (HIPAA 164.312(b), 164.308(a)(1)(ii)(D)) ----------------------------------------

AUDIT_EVENT_FIELDS = (
    "sequence", "created_at", "actor_id", "actor_username", "action", "target_type", "target_id", "target_repr",
    "environment", "team", "ip", "user_agent", "request_id", "data", "prev_hash", "hash",
)


def _event_queryset(ctx: Context) -> QuerySet:
    return (
        AuditEvent.objects.filter(ctx.in_period("created_at"), sequence__lte=ctx.head_sequence)
        .order_by("sequence")
        .values_list(*AUDIT_EVENT_FIELDS)
    )


def event_rows(ctx: Context, batch: list[tuple]) -> list[tuple]:
    # Plain tuples in column order (values_list): a million events must build neither a million
    # model instances nor a million dicts.
    return batch


AUDIT_EVENTS = Dataset(
    name="audit_events",
    title="Audit event extract",
    population="Every audit event whose created_at is in the period, up to the chain head read when the export "
               "started (events appended while it runs belong to the next export). Each row carries prev_hash "
               "and hash, so the extract can be checked against the chain and the sealed head.",
    columns=(
        ("sequence", "Position in the hash chain."),
        ("created_at", "When it happened (UTC)."),
        ("actor_id", "User id of the actor (empty: the system)."),
        ("actor_username", "Username of the actor at the time."),
        ("action", "Action code, e.g. deployment.started."),
        ("target_type", "Kind of object acted on."),
        ("target_id", "Its id."),
        ("target_repr", "Its description at the time."),
        ("environment", "Environment slug."),
        ("team", "Team slug."),
        ("ip", "Client IP address."),
        ("user_agent", "Client user agent."),
        ("request_id", "Request id (correlates with server logs)."),
        ("data", "The event's details (JSON)."),
        ("prev_hash", "Hash of the previous event."),
        ("hash", "sha256(canonical event + prev_hash)."),
    ),
    queryset=_event_queryset,
    rows=event_rows,
    json_columns=("data",),
)


# --- Alerts (HIPAA 164.308(a)(1)(ii)(D)) ----------------------------------------------------------


def _alert_queryset(ctx: Context) -> QuerySet:
    return (
        Alert.objects.filter(ctx.in_period("created_at") | ctx.in_period("resolved_at"))
        .select_related("actor", "resolved_by")
        .order_by("created_at", "pk")
    )


def alert_rows(ctx: Context, batch: list[Alert]) -> list[dict]:
    return [
        {
            "alert_id": a.pk,
            "kind": a.kind,
            "severity": a.severity,
            "status": a.status,
            "subject": a.subject,
            "actor": _user(a.actor),
            "environment": a.environment,
            "team": a.team,
            "created_at": a.created_at,
            "details": a.details,
            "resolution": a.resolution,
            "resolved_by": _user(a.resolved_by),
            "resolved_at": a.resolved_at,
        }
        for a in batch
    ]


ALERTS = Dataset(
    name="alerts",
    title="Security alerts and their resolutions",
    population="Every alert raised (created_at) or resolved (resolved_at) in the period.",
    columns=(
        ("alert_id", "Alert number."),
        ("kind", "What raised it (e.g. off_hours, rubber_stamp, unregistered_deployment, chain_broken)."),
        ("severity", "low, medium, high or critical."),
        ("status", "open or resolved (at export time)."),
        ("subject", "Summary."),
        ("actor", "Whose action raised it."),
        ("environment", "Environment slug."),
        ("team", "Team slug."),
        ("created_at", "When it was raised."),
        ("details", "Details (JSON)."),
        ("resolution", "How it was resolved."),
        ("resolved_by", "Who resolved it."),
        ("resolved_at", "When."),
    ),
    queryset=_alert_queryset,
    rows=alert_rows,
    json_columns=("details",),
    exceptions={"unresolved": lambda r: r["status"] != Alert.Status.RESOLVED},
)


# --- Conflict rules and SoD exceptions (ISO A.5.3) ------------------------------------------------


CONFLICT_RULES = Dataset(
    name="conflict_rules",
    title="Segregation-of-duties conflict rules",
    population="Every conflict rule as configured at export time (active or not); their edit history is in the "
               "audit events (conflict_rule.*).",
    columns=(
        ("rule_id", "Rule number."),
        ("duty_a", "First duty."),
        ("duty_b", "Second duty, not to be held with the first for the same environment."),
        ("tier", "Environment tier it applies to (empty: every tier)."),
        ("description", "Why."),
        ("is_active", "Whether grants are checked against it."),
    ),
    queryset=lambda ctx: ConflictRule.objects.order_by("pk"),
    rows=lambda ctx, batch: [
        {"rule_id": r.pk, "duty_a": r.duty_a, "duty_b": r.duty_b, "tier": r.tier, "description": r.description,
         "is_active": r.is_active}
        for r in batch
    ],
)


def _exception_queryset(ctx: Context) -> QuerySet:
    return (
        SoDException.objects.filter(created_at__lt=ctx.end, expires_at__gte=ctx.start)
        .select_related("user", "environment", "requested_by", "approved_by")
        .prefetch_related(Prefetch("assignments", queryset=RoleAssignment.objects.only("pk", "sod_exception_id")))
        .order_by("created_at", "pk")
    )


def exception_rows(ctx: Context, batch: list[SoDException]) -> list[dict]:
    rows = []
    for e in batch:
        findings = []
        if e.approved_by_id is not None and e.approved_by_id in (e.user_id, e.requested_by_id):
            findings.append("approver_not_independent")
        if e.status == SoDException.Status.ACTIVE and e.approved_by_id is None:
            findings.append("active_without_approver")
        rows.append({
            "exception_id": e.pk,
            "user": e.user.username,
            "duty_a": e.duty_a,
            "duty_b": e.duty_b,
            "environment": _environment_name(e.environment),
            "status": e.status,
            "justification": e.justification,
            "requested_by": _user(e.requested_by),
            "requested_at": e.created_at,
            "approved_by": _user(e.approved_by),
            "approved_at": e.approved_at,
            "expires_at": e.expires_at,
            "grants": sorted(a.pk for a in e.assignments.all()),
            "findings": findings,
        })
    return rows


SOD_EXCEPTIONS = Dataset(
    name="sod_exceptions",
    title="SoD exceptions",
    population="Every SoD exception requested before the period ends and expiring at or after its start "
               "(whatever its status).",
    columns=(
        ("exception_id", "Exception number."),
        ("user", "Who may hold both duties."),
        ("duty_a", "First duty."),
        ("duty_b", "Second duty."),
        ("environment", "Environment slug, or all."),
        ("status", "pending, active, rejected or revoked (at export time)."),
        ("justification", "Why."),
        ("requested_by", "Who asked for it."),
        ("requested_at", "When."),
        ("approved_by", "The security-duty holder who approved it."),
        ("approved_at", "When."),
        ("expires_at", "When it ends."),
        ("grants", "Role assignments held under it."),
        ("findings", "approver_not_independent, active_without_approver."),
    ),
    queryset=_exception_queryset,
    rows=exception_rows,
    exceptions={"exception_findings": lambda r: bool(r["findings"])},
)


# --- Audit verification (ISO A.8.15) --------------------------------------------------------------


def verification_rows_now(ctx: Context) -> list[dict]:
    """Recompute the chain and check the seals at export time."""
    from audit.chain import verify as verify_chain
    from audit.seals import verify_seals

    checked_at = timezone.now()
    checked, broken = verify_chain()
    rows = [{
        "check": "audit_chain",
        "result": "fail" if broken else "pass",
        "detail": f"first break: {broken}" if broken else f"{checked} events recomputed, none broken",
        "checked_at": checked_at,
    }]
    try:
        sealed, seal_break = verify_seals()
    except Exception as exc:  # e.g. no signing key: a failed check, not a failed export
        rows.append({"check": "audit_seals", "result": "fail", "detail": f"seals not verifiable: {exc}"[:500],
                     "checked_at": checked_at})
    else:
        rows.append({
            "check": "audit_seals",
            "result": "fail" if seal_break else "pass",
            "detail": f"first break: {seal_break}" if seal_break else f"{sealed} seals verified",
            "checked_at": checked_at,
        })
    in_period = AuditEvent.objects.filter(ctx.in_period("created_at"), sequence__lte=ctx.head_sequence).count()
    rows.append({"check": "events_in_period", "result": "info",
                 "detail": f"{in_period} events recorded in the period", "checked_at": checked_at})
    return rows


AUDIT_VERIFICATION = Dataset(
    name="audit_verification",
    title="Audit trail verification",
    population="Computed when the bundle was built: the whole hash chain recomputed (audit_verify), the seals "
               "checked against the public key, and the number of events in the period.",
    columns=(
        ("check", "audit_chain, audit_seals or events_in_period."),
        ("result", "pass, fail, skipped or info."),
        ("detail", "What was checked, or the first break."),
        ("checked_at", "When."),
    ),
    queryset=None,
    rows=lambda ctx, batch: batch,
    exceptions={"verification_failed": lambda r: r["result"] == "fail"},
    computed=verification_rows_now,
)


# --- Control changes (RULES.md K7: SOX ITGC-CM/AC, HIPAA 164.308(a)(1)(ii)(D)/(a)(4), ISO A.5.3/A.5.15/A.8.32)

CONTROL_CHANGE_FIELDS = (
    "pk", "kind", "operation", "target_id", "target_repr", "scope", "subject_id", "subject__username", "status",
    "changed", "weakening", "before", "after", "proposed_by_id", "proposed_by__username", "proposed_at",
    "expires_at", "decided_by_id", "decided_by__username", "decided_at", "applied_at", "comment",
)


def _control_change_queryset(ctx: Context) -> QuerySet:
    expired = Q(status=ControlChange.Status.EXPIRED) & ctx.in_period("expires_at")
    return (
        ControlChange.objects.filter(
            ctx.in_period("proposed_at") | ctx.in_period("decided_at") | ctx.in_period("applied_at") | expired
        )
        .order_by("proposed_at", "pk")
        .values_list(*CONTROL_CHANGE_FIELDS)
    )


APPLIED = ControlChange.Status.APPLIED
EXPIRED = ControlChange.Status.EXPIRED


def control_change_rows(ctx: Context, batch: list[tuple]) -> list[dict]:
    rows = []
    start, end = ctx.start, ctx.end
    for (
        pk, kind, operation, target_id, target_repr, scope, subject_id, subject, status, changed, weakening,
        before, after, proposed_by_id, proposed_by, proposed_at, expires_at, decided_by_id, decided_by,
        decided_at, applied_at, comment,
    ) in batch:
        activity = [
            name for name, at in (("proposed", proposed_at), ("decided", decided_at), ("applied", applied_at),
                                  ("expired", expires_at if status == EXPIRED else None))
            if at is not None and start <= at < end
        ]
        findings = []
        if status == APPLIED and weakening:
            findings.append("weakened_control")
            # The control door applies a weakening change only on a second person's approval (K3):
            # one without, or approved by its proposer or by the account it concerns, was written
            # around it.
            if decided_by_id is None:
                findings.append("unapproved_weakening (applied with no second person)")
            elif decided_by_id == proposed_by_id:
                findings.append("unapproved_weakening (approved by its proposer)")
            elif decided_by_id == subject_id:
                findings.append("unapproved_weakening (approved by the account it concerns)")
        rows.append({
            "control_change_id": pk,
            "kind": kind,
            "control": target_repr,
            "target_id": target_id,
            "operation": operation,
            "scope": Scope.from_dict(scope or {}).describe(),
            "subject": subject,
            "status": status,
            "changed": list(changed or []),
            "weakening": [{"field": w.get("field", ""), "message": w.get("message", "")} for w in weakening or []],
            "before": before,
            "after": after,
            "proposed_by": proposed_by,
            "proposed_at": iso(proposed_at),
            "expires_at": iso(expires_at),
            "decided_by": decided_by,
            "decided_at": iso(decided_at),
            "applied_at": iso(applied_at),
            "comment": comment,
            "activity_in_period": activity,
            "findings": findings,
        })
    return rows


CONTROL_CHANGES = Dataset(
    name="control_changes",
    title="Control changes (who changed the rules, and who approved)",
    population="Every change to a control (RULES.md section 8: approval policies, freeze windows, environments, "
               "teams, roles and their duties, conflict rules, accounts, notification channels, the schedules "
               "of the detective controls) proposed (proposed_at), decided (decided_at), applied (applied_at) or "
               "expired undecided (expires_at) in the period, whatever became of it. Changes to the control "
               "configuration are changes in scope: a weakening one takes effect only when a second person with "
               "the duty for its scope approves it (K3), so each row names its proposer and its approver. "
               "The chain carries the same values in its control.* events.",
    columns=(
        ("control_change_id", "Control change number (the control.* audit events name it)."),
        ("kind", "The kind of control, e.g. releases.approvalpolicy, governance.role, auth.user."),
        ("control", "The control, as named when it changed (e.g. approval policy production)."),
        ("target_id", "Its id (empty: a proposed creation never applied)."),
        ("operation", "create, update or delete."),
        ("scope", "Whose duty decides it: the environments it concerns, all environments, or a team."),
        ("subject", "The account the change concerns (who may not approve it)."),
        ("status", "applied, pending, rejected, withdrawn or expired (at export time)."),
        ("changed", "The fields whose values differ."),
        ("weakening", "Why the change weakens the control, so that a second person had to approve it: field, "
                      "message. Empty: a strengthening or neutral change, applied at once."),
        ("before", "The control's values before (JSON; empty for a creation). Secrets appear as fingerprints."),
        ("after", "Its values after (JSON; empty for a deletion)."),
        ("proposed_by", "Who made or proposed the change (empty: a command such as sync_schedules)."),
        ("proposed_at", "When."),
        ("expires_at", "When a proposal lapses undecided."),
        ("decided_by", "Who decided a proposal: the second person who approved (status applied) or rejected "
                       "it, or its proposer who withdrew it. Empty for a change applied at once."),
        ("decided_at", "When."),
        ("applied_at", "When the change took effect (empty: it never did)."),
        ("comment", "The proposer's or the decider's comment."),
        ("activity_in_period", "Which of proposed / decided / applied / expired happened in the period."),
        ("findings", "weakened_control: a weakening change took effect; unapproved_weakening: one took effect "
                     "with no second person, or approved by its proposer or by the account it concerns (the "
                     "control door never does this: a change written around it)."),
    ),
    queryset=_control_change_queryset,
    rows=control_change_rows,
    json_columns=("before", "after"),
    exceptions={
        "weakened_control": lambda r: "weakened_control" in r["findings"],
        "unapproved_weakening": lambda r: any(f.startswith("unapproved_weakening") for f in r["findings"]),
    },
)


def control_changes_for_report(ctx: Context, limit: int) -> tuple[list[dict], int]:
    """The period's control changes as the report lists them: weakening ones first, then in the
    order they were proposed; at most ``limit`` of them, and how many there are in all."""
    rows = control_change_rows(ctx, list(_control_change_queryset(ctx)))
    rows.sort(key=lambda r: not r["weakening"])  # stable: proposal order within each group
    for row in rows:
        row["values"] = [
            {"field": name, "before": _report_value(row["before"], name), "after": _report_value(row["after"], name)}
            for name in row["changed"]
        ]
    return rows[:limit], len(rows)


def _report_value(values: dict | None, name: str) -> str:
    if values is None or name not in values:
        return "—"
    value = values[name]
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
