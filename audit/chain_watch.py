"""E2 / L2: the scheduled re-verification of the audit chain and its seals; a break raises a
critical alert (once per break, until someone resolves it)."""
from audit.alerts import raise_alert
from audit.chain import verify
from audit.models import Alert
from audit.seals import verify_seals


def verify_and_alert() -> bool:
    """Recompute the chain and check every seal; returns True when both are intact.

    The seals are checked even when the events are broken: they may name a different, earlier
    break (an event rewritten with every later hash recomputed passes the chain check)."""
    intact = True
    checked, broken = verify()
    if broken is not None:
        intact = False
        raise_alert(
            "audit_chain_broken", severity=Alert.Severity.CRITICAL,
            subject=f"The audit chain is broken at event #{broken.sequence}",
            details={"sequence": broken.sequence, "event_id": broken.event_id, "problem": broken.problem,
                     "verified_before_break": checked},
            dedupe_key=f"audit_chain_broken:{broken.sequence}",
        )
    sealed, seal_broken = verify_seals()
    if seal_broken is not None:
        intact = False
        raise_alert(
            "audit_chain_broken", severity=Alert.Severity.CRITICAL,
            subject=f"The audit seals are broken at seal {seal_broken.seal}",
            details={"seal": seal_broken.seal, "sequence": seal_broken.sequence, "event_id": seal_broken.event_id,
                     "problem": seal_broken.problem, "seals_verified_before_break": sealed},
            dedupe_key=f"audit_chain_broken:seal:{seal_broken.seal}",
        )
    return intact
