"""The change request state machine, as data (RULES.md section 3). Services check it; nothing
else moves a change between states."""
from releases.models import ChangeRequest, Deployment

S = ChangeRequest.State

# action -> (states it may start from, state it leads to; None = decided by the service)
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "submit": (frozenset({S.DRAFT}), None),  # pending, or approved when the policy is already met
    "approve": (frozenset({S.PENDING}), None),  # stays pending until the policy is met
    "reject": (frozenset({S.PENDING}), S.REJECTED),
    "new_revision": (frozenset({S.PENDING, S.APPROVED}), S.PENDING),
    "edit": (frozenset({S.DRAFT, S.PENDING}), None),
    "cancel": (frozenset({S.DRAFT, S.PENDING, S.APPROVED}), S.CANCELLED),
    "deploy": (frozenset({S.APPROVED}), S.DEPLOYING),
    "finish_succeeded": (frozenset({S.DEPLOYING}), S.DEPLOYED),
    "finish_failed": (frozenset({S.DEPLOYING}), S.FAILED),
    "rollback": (frozenset({S.DEPLOYED}), S.ROLLED_BACK),
    "review_pir": (frozenset({S.DEPLOYED, S.ROLLED_BACK}), None),
}

TERMINAL = frozenset({S.REJECTED, S.CANCELLED, S.FAILED, S.ROLLED_BACK})

DEPLOYMENT_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "finish_succeeded": (frozenset({Deployment.State.RUNNING}), Deployment.State.SUCCEEDED),
    "finish_failed": (frozenset({Deployment.State.RUNNING}), Deployment.State.FAILED),
    "rollback": (frozenset({Deployment.State.SUCCEEDED}), Deployment.State.ROLLED_BACK),
}


def allows(action: str, state: str) -> bool:
    return state in TRANSITIONS[action][0]


def target(action: str) -> str | None:
    return TRANSITIONS[action][1]
