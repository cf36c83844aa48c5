"""Which datasets each framework's bundle holds, and which controls they evidence.

A control names the datasets that evidence it and, per dataset, which exception kinds count
against it (``None``: every kind the dataset defines). The report's control-by-control table and
the manifest's ``controls`` list come from here.
"""
from dataclasses import dataclass

from audit.evidence import datasets as ds


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
        "made under an SoD exception are flagged; emergency changes had their post-implementation review.",
        ((ds.PRODUCTION_DEPLOYMENTS, None),),
    ),
    Control(
        "SOX ITGC-AC",
        "Logical access",
        "Access was granted with a requester and, for privileged access, an independent second approver and "
        "an expiry; revocations are recorded; every grant was reviewed in a campaign with a recorded decision; "
        "leavers' grants ended.",
        ((ds.ROLE_GRANTS, None), (ds.ACCESS_REVIEWS, None), (ds.LEAVERS, None)),
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
        "unresolved alerts are exceptions.",
        ((ds.AUDIT_EVENTS, None), (ds.ALERTS, None)),
    ),
    Control(
        "HIPAA 164.308(a)(4)",
        "Information access management",
        "Access is authorised, granted with four eyes where privileged, reviewed periodically and revoked.",
        ((ds.ROLE_GRANTS, None), (ds.ACCESS_REVIEWS, None)),
    ),
)

ISO27001 = (
    Control(
        "ISO 27001 A.5.3",
        "Segregation of duties",
        "Conflicting duties are defined as rules, exceptions are justified, approved and time-boxed, and "
        "no change was written, approved and deployed by the same person.",
        ((ds.CONFLICT_RULES, None), (ds.SOD_EXCEPTIONS, None), (ds.CHANGES, ("sod_violation", "sod_exception"))),
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
        "Changes are approved per policy before deployment and reviewed afterwards when they were emergencies.",
        ((ds.CHANGES, None),),
    ),
)

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
