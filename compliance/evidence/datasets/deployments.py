"""Deployments (SOX ITGC-CM, ISO A.8.32 / A.5.3): every deployment of the period with the decision
the policy engine recorded when it started (``Deployment.decision``, ``releases.decisions``), plus
what was learnt later.

The verdict columns report the decision record; nothing here recomputes an approval policy:

- ``policy_at_deploy``, ``policy_source``, ``policy_findings`` (the requirements the record says
  were unmet) and the SoD verdict come from the record;
- learnt later: an approval or a contributor recorded after the decision, and the SoD conflicts
  the facts now show (``releases.policy.sod_conflicts``, the engine's own rule, asked of the
  approvals and contributors as they stand at export); alerts naming the change; and the controls
  in force (``control_findings``: a control weaker than at the period's start, a recorded policy
  below the framework's baseline, ``compliance.evidence.control_history``).

A deployment without a record (started before decision records existed, or written around the
services) says so: ``decision`` is ``not_recorded``, its verdict ``not_recorded`` (or ``violation``
when the facts show a conflict), the exception kind ``no_decision_recorded``; its policy is looked
up in the policy's history for context only (docs/rules.md L-section).
"""
import json
from datetime import datetime
from typing import Callable

from django.db.models import ExpressionWrapper, F, QuerySet, TextField

from compliance.evidence.control_history import BELOW_BASELINE, WEAKENED, below_baseline
from compliance.evidence.datasets.base import Context, Dataset, policy_at
from compliance.evidence.writer import RawJSON, iso
from governance.models import Environment
from releases.models import Approval, ChangeRequest, Deployment, RevisionContributor
from releases.policy import sod_conflicts

# The population query of the deployment datasets: one tuple per deployment, in this order.
DEPLOYMENT_FIELDS = (
    "pk", "change_request_id", "change_request__title", "change_request__team__slug", "environment_id",
    "environment__slug", "environment__tier", "change_request__ticket_url", "artifact", "revision",
    "change_request__change_type", "change_request__risk", "change_request__author_id",
    "change_request__author__username", "deployer_id", "deployer__username", "state",
    "change_request__created_at", "change_request__submitted_at", "change_request__approved_at", "started_at",
    "finished_at", "rolled_back_at", "pipeline_url", "change_request__pir_due_at",
    "change_request__pir_by__username", "change_request__pir_at", "record",
)

# The decision record's stored text (canonical JSON, releases.fields), read as text: it is copied
# into both files as it is and decoded once for the few keys the rest of the row needs.
RECORD_TEXT = ExpressionWrapper(F("decision"), output_field=TextField())


def _deployments(production_only: bool) -> Callable[[Context], QuerySet]:
    def queryset(ctx: Context) -> QuerySet:
        qs = Deployment.objects.filter(ctx.in_period("started_at"))
        if production_only:
            qs = qs.filter(environment__tier=Environment.Tier.PRODUCTION)
        return qs.annotate(record=RECORD_TEXT).order_by("started_at", "pk").values_list(*DEPLOYMENT_FIELDS)

    return queryset


EMERGENCY = ChangeRequest.ChangeType.EMERGENCY
SUCCEEDED = Deployment.State.SUCCEEDED
AUTO = Approval.Via.AUTO
NOT_RECORDED = "not_recorded"
LATER = " (recorded after the decision)"


def _pir(emergency: bool, pir_at, pir_due_at, state: str, now: datetime) -> str:
    if not emergency:
        return "not_required"
    if pir_at is not None:
        return "done_late" if pir_due_at and pir_at > pir_due_at else "done"
    if pir_due_at is None:
        return "not_due" if state != SUCCEEDED else "pending"
    return "overdue" if now > pir_due_at else "pending"


def _approvals_of(change_ids) -> dict[tuple[int, int], list[tuple]]:
    """The approving decisions of the batch's changes (one query), by (change id, revision), in
    decision order: (approval id, reviewer id, username, is_security, is_team_member, via, at)."""
    found: dict[tuple[int, int], list[tuple]] = {}
    rows = (
        Approval.objects.filter(change_request_id__in=change_ids, decision=Approval.Decision.APPROVED)
        .order_by("created_at", "pk")
        .values_list("change_request_id", "revision", "pk", "reviewer_id", "reviewer__username", "is_security",
                     "is_team_member", "via", "created_at")
    )
    for change_id, revision, *approval in rows:
        found.setdefault((change_id, revision), []).append(tuple(approval))
    return found


def _contributors_of(change_ids) -> dict[int, dict[int, tuple[str, datetime]]]:
    """Everyone listed as a contributor of any revision of the batch's changes (one query), by
    change id: user id -> (username, when first listed). A contributor removed in a later revision
    stays (C2, C5)."""
    found: dict[int, dict[int, tuple[str, datetime]]] = {}
    rows = (RevisionContributor.objects.filter(change_request_id__in=change_ids)
            .order_by("listed_at", "pk").values_list("change_request_id", "user_id", "user__username", "listed_at"))
    for change_id, user_id, username, listed_at in rows:
        found.setdefault(change_id, {}).setdefault(user_id, (username, listed_at))
    return found


def _approver(username, role, team_member, via, at) -> dict:
    return {"username": username, "role": role, "team_member": team_member, "via": via, "at": at}


def _unmet(requirement: dict) -> str:
    required, actual = requirement["required"], requirement["actual"]
    if isinstance(required, int) and not isinstance(required, bool):
        return f"{requirement['name']}_unmet ({actual} of {required})"
    return f"{requirement['name']}_unmet"


def _policy_source(record: dict) -> str:
    policy = record["policy"]
    if policy["default"]:
        return "decision record: no approval policy for the environment; the engine's default (one approval)"
    version = policy["version"]
    saved = f"version {version['history_id']} of {version['saved_at']}" if version else "no recorded version"
    return f"decision record of {record['decided_at']}: policy #{policy['id']}, {saved}"


def _below_baseline(ctx: Context, environment_id: int, environment: str, values: dict) -> list[str]:
    """below_baseline findings of a recorded policy (judged once per distinct policy and environment)."""
    if ctx.baseline is None or environment_id not in ctx.production_environments:
        return []
    key = (environment_id, tuple(sorted(values.items())))
    found = ctx.baseline_findings.get(key)
    if found is None:
        found = ctx.baseline_findings[key] = below_baseline(ctx.baseline, values, environment)
    return found


def deployment_rows(ctx: Context, batch: list[tuple]) -> list[dict]:
    change_ids = {d[1] for d in batch}
    approvals = _approvals_of(change_ids)
    contributors = _contributors_of(change_ids)
    history = ctx.control_history
    now = ctx.generated_at
    rows = []
    for (
        pk, change_id, title, team, environment_id, environment, tier, ticket_url, artifact, revision,
        change_type, risk, author_id, author, deployer_id, deployer, state, created_at, submitted_at,
        approved_at, started_at, finished_at, rolled_back_at, pipeline_url, pir_due_at, pir_by, pir_at,
        text,
    ) in batch:
        listed = contributors.get(change_id, {})
        approved = approvals.get((change_id, revision), ())
        emergency = change_type == EMERGENCY
        # What the facts show now, asked of the engine's own rule.
        conflicts_now = sod_conflicts(author_id=author_id, contributor_ids=listed.keys(),
                                      approver_ids={a[1] for a in approved}, deployer_id=deployer_id)
        later = list(ctx.change_alerts.get(change_id, ()))
        if text is not None:
            record = json.loads(text)
            counted = {a["approval_id"] for a in record["approvers"]}
            later += [f"approval by {a[2] or 'system (policy)'}{LATER}" for a in approved if a[0] not in counted]
            if listed:
                decided_at = datetime.fromisoformat(record["decided_at"])
                later += [f"contributor {name}{LATER}" for name, listed_at in listed.values() if listed_at > decided_at]
            sod = record["sod"]
            recorded = sod["findings"]
            learnt = [f"{code}{LATER}" for code in conflicts_now if code not in recorded]
            verdict = "violation" if learnt else sod["verdict"]
            sod_findings = recorded + learnt
            approvers = [_approver(a["username"], a["role"], a["team_member"], a["via"], a["at"])
                         for a in record["approvers"]]
            policy, policy_source = record["policy"]["values"], _policy_source(record)
            policy_findings = [_unmet(r) for r in record["requirements"] if not r["met"]]
            below = _below_baseline(ctx, environment_id, environment, policy)
            decision = "allowed" if record["allowed"] else "refused"
            text = RawJSON(text)
        else:
            verdict = "violation" if conflicts_now else NOT_RECORDED
            sod_findings = conflicts_now
            approvers = [
                _approver(username if reviewer_id else "system (policy)",
                          "security_approve" if security else ("auto" if via == AUTO else "approve"),
                          team_member, via, iso(at))
                for _, reviewer_id, username, security, team_member, via, at in approved
            ]
            policy, policy_source = policy_at(ctx, environment_id, started_at)
            policy_source = f"no decision recorded; from the policy's history: {policy_source}"
            policy_findings = []
            below = history.below_baseline_at(ctx.policy_history, environment_id, started_at)
            decision = NOT_RECORDED
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
            "contributors": sorted(name for name, _ in listed.values()),
            "approvers": approvers,
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
            "decision": decision,
            "policy_at_deploy": policy,
            "policy_source": policy_source,
            "policy_findings": policy_findings,
            "sod_verdict": verdict,
            "sod_findings": sod_findings,
            "later_findings": later,
            "control_findings": history.weakened_at(environment, started_at) + below,
            "decision_record": text,
        })
    return rows


DEPLOYMENT_COLUMNS = (
    ("deployment_id", "Deployment number."),
    ("change_id", "The change request (CR-<id>)."),
    ("change_title", "Title of the change request."),
    ("team", "Team that owns the change."),
    ("environment", "Target environment (slug)."),
    ("environment_tier", "development, staging or production (at export time)."),
    ("ticket_url", "Ticket linked to the change."),
    ("artifact", "What was deployed (image digest, commit, version)."),
    ("revision", "Revision of the change that was deployed."),
    ("change_type", "standard, normal or emergency."),
    ("risk", "low, medium or high."),
    ("emergency", "true for an emergency change."),
    ("author", "Who wrote the change."),
    ("contributors", "Everyone listed as a contributor (commit author) in any revision of the change, "
                     "including those a later revision no longer lists (at export time)."),
    ("approvers", "The approvals the decision counted: username, role (approve, security_approve, auto), "
                  "team_member, via (portal, api, auto), at. Without a decision record: the approvals of the "
                  "deployed revision as stored."),
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
    ("decision", "allowed: the policy engine's decision recorded when the deployment started (decision_record); "
                 "not_recorded: the deployment has no decision record (started before they were kept, or "
                 "written around the services)."),
    ("policy_at_deploy", "The approval policy the decision applied (without a record: the version in force at "
                         "deploy time from the policy's history, for context); see policy_source."),
    ("policy_source", "Which policy and version policy_at_deploy is."),
    ("policy_findings", "The requirements the decision record says were unmet (<requirement>_unmet)."),
    ("sod_verdict", "pass; exception (a participant held their duty under an SoD exception); violation "
                    "(author, contributors, approvers and deployer not all distinct, in the decision or in the "
                    "facts recorded after it); not_recorded (no decision record and no conflict in the facts)."),
    ("sod_findings", "What the verdict found; a finding learnt after the decision says so."),
    ("later_findings", "Learnt after the decision: alerts naming the change (alert #id kind (status)), approvals "
                       "and contributors recorded after it."),
    ("control_findings", "control_weakened: the deployment started while a control concerning its environment "
                         "(or every environment) was weaker than at the period's start — which control, why, and "
                         "the control change that weakened it (see control_changes); below_baseline: the policy "
                         "the decision applied is weaker than the framework's baseline for production."),
    ("decision_record", "The decision record itself (JSON; docs/rules.md L-section): policy and controls in force "
                        "with their version, each requirement with met, the approvers with role and revision, "
                        "author, contributors, deployer, the SoD verdict and every reason."),
)

DEPLOYMENT_EXCEPTIONS = {
    "sod_violation": lambda r: r["sod_verdict"] == "violation",
    "sod_exception": lambda r: r["sod_verdict"] == "exception",
    "policy_not_met": lambda r: bool(r["policy_findings"]),
    "no_decision_recorded": lambda r: r["decision"] == NOT_RECORDED,
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
    json_columns=("decision_record",),
)

CHANGES = Dataset(
    name="changes",
    title="Changes deployed (all environments)",
    population="Every deployment to any environment whose deploy_started_at is in the period.",
    columns=DEPLOYMENT_COLUMNS,
    queryset=_deployments(production_only=False),
    rows=deployment_rows,
    exceptions=DEPLOYMENT_EXCEPTIONS,
    json_columns=("decision_record",),
)
