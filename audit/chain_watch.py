"""E2 / L2: the scheduled re-verification of the audit chain; a break raises a critical alert
(once per break, until someone resolves it)."""
from audit.alerts import raise_alert
from audit.chain import verify
from audit.models import Alert


def verify_and_alert() -> bool:
    """Recompute the chain; returns True when intact."""
    checked, broken = verify()
    if broken is None:
        return True
    raise_alert(
        "audit_chain_broken", severity=Alert.Severity.CRITICAL,
        subject=f"The audit chain is broken at event #{broken.sequence}",
        details={"sequence": broken.sequence, "event_id": broken.event_id, "problem": broken.problem,
                 "verified_before_break": checked},
        dedupe_key=f"audit_chain_broken:{broken.sequence}",
    )
    return False
