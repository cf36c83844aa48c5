"""Which datasets each framework's bundle holds, and which controls they evidence.

A control names the datasets that evidence it and, per dataset, which exception kinds count
against it (``None``: every kind the dataset defines). The report's control-by-control table and
the manifest's ``controls`` list come from here.

Every framework's bundle holds the period's control changes (RULES.md K7): changing what the
rules allow is a change in scope of change management (who proposed it, who approved it) and of
access management (roles, accounts, conflict rules). ``POLICY_BASELINES`` is the weakest approval
policy each framework accepts for production; a deployment decided under a weaker one is a
``below_baseline`` finding of its deployments dataset.
"""
from dataclasses import dataclass

from compliance.evidence import datasets as ds
from compliance.evidence.control_history import PolicyBaseline
from compliance.evidence.leaver_offboarding import LEAVER_OFFBOARDING


@dataclass(frozen=True)
class Control:
    id: str
    name: str
    tests: str
    evidence: tuple[tuple[ds.Dataset, tuple[str, ...] | None], ...]


SOX = (
    Control(
        "SOX ITGC-CM",
        "Change management",
        "Every production deployment was approved as the environment's policy required at deploy time and "
        "deployed with segregation of duties (author, contributors, approvers and deployer distinct); changes "
        "made under an SoD exception are flagged; emergency changes had their post-implementation review; no "
        "deployment was decided under a control weaker than at the period's start or under a policy below the "
        "SOX baseline. Changes to the control configuration are changes in scope: each names its proposer and, "
        "when it weakened a control, the second person who approved it. The population is complete: every "
        "production deployment the platforms and deploy tools reported is matched to an approved change request "
        "deployed through Countersign, or listed as an exception.",
        ((ds.PRODUCTION_DEPLOYMENTS, None), (ds.DEPLOYMENT_RECONCILIATION, None), (ds.CONTROL_CHANGES, None)),
    ),
    Control(
        "SOX ITGC-AC",
        "Logical access",
        "Access was granted with a requester and, for privileged access, an independent second approver and "
        "an expiry; revocations are recorded; every grant was reviewed in a campaign with a recorded decision; "
        "leavers' grants ended; changes to roles, accounts and conflict rules that widen access took effect "
        "only with a second person's approval.",
        ((ds.ROLE_GRANTS, None), (ds.ACCESS_REVIEWS, None), (ds.LEAVERS, None), (LEAVER_OFFBOARDING, None),
         (ds.CONTROL_CHANGES, None)),
    ),
)

HIPAA = (
    Control(
        "HIPAA 164.312(b)",
        "Audit controls",
        "Activity is recorded in a complete, hash-chained audit trail (the extract carries each event's hash).",
        ((ds.AUDIT_EVENTS, None),),
    ),
    Control(
        "HIPAA 164.308(a)(1)(ii)(D)",
        "Information system activity review",
        "Audit records and security alerts are reviewed: every alert of the period with its resolution; "
        "unresolved alerts are exceptions; every change to the controls (what gets detected, who may act) with "
        "its proposer and approver, weakening ones flagged.",
        ((ds.AUDIT_EVENTS, None), (ds.ALERTS, None), (ds.CONTROL_CHANGES, None)),
    ),
    Control(
        "HIPAA 164.308(a)(4)",
        "Information access management",
        "Access is authorised, granted with four eyes where privileged, reviewed periodically and revoked; "
        "the rules that decide access (roles, accounts) are changed with four eyes where they widen it.",
        ((ds.ROLE_GRANTS, None), (ds.ACCESS_REVIEWS, None), (ds.CONTROL_CHANGES, None)),
    ),
)

ISO27001 = (
    Control(
        "ISO 27001 A.5.3",
        "Segregation of duties",
        "Conflicting duties are defined as rules, exceptions are justified, approved and time-boxed, and "
        "no change was written, approved and deployed by the same person, and no control was weakened by "
        "one person alone (the proposer of a weakening change is never its approver).",
        ((ds.CONFLICT_RULES, None), (ds.SOD_EXCEPTIONS, None), (ds.CHANGES, ("sod_violation", "sod_exception")),
         (ds.CONTROL_CHANGES, ("unapproved_weakening",))),
    ),
    Control(
        "ISO 27001 A.5.15",
        "Access control",
        "The rules for access (approval policies, roles and their duties, conflict rules, accounts) are changed "
        "only through the control door: every change is recorded with its values before and after, and one "
        "that weakens a rule takes effect only on a second person's approval.",
        ((ds.CONTROL_CHANGES, None),),
    ),
    Control(
        "ISO 27001 A.5.18",
        "Access rights",
        "Access rights are provisioned, reviewed and removed according to the access control rules.",
        ((ds.ROLE_GRANTS, None), (ds.ACCESS_REVIEWS, None)),
    ),
    Control(
        "ISO 27001 A.8.15",
        "Logging",
        "Logs are produced, protected against tampering (hash chain and signed seals) and verified.",
        ((ds.AUDIT_VERIFICATION, None),),
    ),
    Control(
        "ISO 27001 A.8.32",
        "Change management",
        "Changes are approved per policy before deployment and reviewed afterwards when they were emergencies; "
        "no deployment was decided under a control weaker than at the period's start or under a production "
        "policy below the ISO baseline; changes to the control configuration are themselves recorded and, "
        "when weakening, approved by a second person.",
        ((ds.CHANGES, None), (ds.CONTROL_CHANGES, None)),
    ),
)

# The weakest approval policy each framework accepts for production (K7), compared with the
# approval-policy kind's own comparators. Both ask what the floors (K4) ask of a production policy:
# an independent human approval for every change, emergencies included, and no auto-approval. The
# floors stop the control door from going below it; the baseline catches a production policy below
# it however it came about (written around the door, or an environment raised to production with
# the policy of a lower tier). HIPAA's bundle has no deployments dataset, so it needs none.
PRODUCTION_POLICY_BASELINE = {"min_approvals": 1, "emergency_min_approvals": 1, "allow_auto_approve_standard": False}
BASELINE_SUMMARY = "at least one approval, at least one for an emergency change, no auto-approval"
POLICY_BASELINES = {
    "sox": PolicyBaseline("SOX", PRODUCTION_POLICY_BASELINE, BASELINE_SUMMARY),
    "iso27001": PolicyBaseline("ISO 27001", PRODUCTION_POLICY_BASELINE, BASELINE_SUMMARY),
}

FRAMEWORKS = {"sox": SOX, "hipaa": HIPAA, "iso27001": ISO27001}


def datasets_of(framework: str) -> list[ds.Dataset]:
    """The framework's datasets in the order they are written, each once."""
    seen: dict[str, ds.Dataset] = {}
    for control in FRAMEWORKS[framework]:
        for dataset, _ in control.evidence:
            seen.setdefault(dataset.name, dataset)
    return list(seen.values())


def controls_of(framework: str, dataset_name: str) -> list[str]:
    return [c.id for c in FRAMEWORKS[framework] if any(d.name == dataset_name for d, _ in c.evidence)]
