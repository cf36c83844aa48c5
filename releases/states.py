"""The change request state machine, as data (RULES.md section 3). Services check it; nothing
else moves a change between states. Every question about a change's or a deployment's state — in
the services, the policy engine, the selectors, the portal's views and templates — is asked here
(``tests/architecture/test_one_home.py`` keeps it so)."""
from releases.models import ChangeRequest, Deployment

S = ChangeRequest.State

# action -> (states it may start from, state it leads to; None = decided by the service)
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    # pending, or approved when the policy is already met; from changes_requested it is a resubmission
    "submit": (frozenset({S.DRAFT, S.CHANGES_REQUESTED}), None),
    "approve": (frozenset({S.PENDING}), None),  # stays pending until the policy is met
    "reject": (frozenset({S.PENDING}), S.REJECTED),
    # A reviewer's non-final decision: back to the author, who revises and resubmits.
    "request_changes": (frozenset({S.PENDING}), S.CHANGES_REQUESTED),
    # An edit of what reviewers read: pending again, or still changes_requested until resubmitted.
    "new_revision": (frozenset({S.PENDING, S.APPROVED, S.CHANGES_REQUESTED}), None),
    "edit": (frozenset({S.DRAFT, S.PENDING, S.CHANGES_REQUESTED}), None),
    # The author takes a change out of review, back to a draft (a new revision when submitted again).
    "withdraw": (frozenset({S.PENDING, S.CHANGES_REQUESTED}), S.DRAFT),
    # An approved change whose approvals expired goes back for review; so does a failed one, which
    # could otherwise be neither retried (approvals_expired) nor edited nor cancelled.
    "re_review": (frozenset({S.APPROVED, S.FAILED}), S.PENDING),
    "cancel": (frozenset({S.DRAFT, S.PENDING, S.CHANGES_REQUESTED, S.APPROVED}), S.CANCELLED),
    "deploy": (frozenset({S.APPROVED}), S.DEPLOYING),
    # A failed deployment is tried again by an operator, as a new attempt under the same checks.
    "retry": (frozenset({S.FAILED}), S.DEPLOYING),
    "finish_succeeded": (frozenset({S.DEPLOYING}), S.DEPLOYED),
    "finish_failed": (frozenset({S.DEPLOYING}), S.FAILED),
    "rollback": (frozenset({S.DEPLOYED}), S.ROLLED_BACK),
    "review_pir": (frozenset({S.DEPLOYED, S.ROLLED_BACK}), None),
}

# No way on from these (a failed change may still be retried, so it is not among them).
TERMINAL = frozenset({S.REJECTED, S.CANCELLED, S.ROLLED_BACK})
OPEN = frozenset({S.DRAFT, S.PENDING, S.CHANGES_REQUESTED, S.APPROVED, S.DEPLOYING})  # still on their way
# Deploying is refused as ``not_approved`` (not ``invalid_state``) from these: they may yet be approved.
NOT_YET_APPROVED = frozenset({S.DRAFT, S.PENDING, S.CHANGES_REQUESTED, S.REJECTED})
# A change in these covers a reported deployment of its artifact (E2): approved, going or gone out.
COVERS_DEPLOYMENT = frozenset({S.APPROVED, S.DEPLOYING, S.DEPLOYED})
# A deployment of an artifact in these counts as the prior environment's deployment (C8).
PRIOR_DEPLOYMENT = frozenset({Deployment.State.SUCCEEDED})
# Where approvals still decide something: a pending change, or an approved one a new revision reopens.
DECISIONS_APPLY = frozenset({S.PENDING, S.APPROVED})
# Where the author is asked to act: a draft to submit, or changes a reviewer asked for.
AUTHOR_TO_ACT = frozenset({S.DRAFT, S.CHANGES_REQUESTED})


def after_revision(state: str) -> str:
    """The state a new revision leaves a change in: still ``changes_requested`` (the author
    resubmits when ready), otherwise ``pending``."""
    return S.CHANGES_REQUESTED if state == S.CHANGES_REQUESTED else S.PENDING


def is_pending(state: str) -> bool:
    return state == S.PENDING


def is_resubmission(state: str) -> bool:
    return state == S.CHANGES_REQUESTED


DEPLOYMENT_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "finish_succeeded": (frozenset({Deployment.State.RUNNING}), Deployment.State.SUCCEEDED),
    "finish_failed": (frozenset({Deployment.State.RUNNING}), Deployment.State.FAILED),
    "rollback": (frozenset({Deployment.State.SUCCEEDED}), Deployment.State.ROLLED_BACK),
}


def allows(action: str, state: str) -> bool:
    return state in TRANSITIONS[action][0]


def starts(action: str) -> frozenset[str]:
    """The states ``action`` may start from (for a query: ``state__in=starts("approve")``)."""
    return TRANSITIONS[action][0]


def is_approved(state: str) -> bool:
    return state == S.APPROVED


def deployment_allows(action: str, state: str) -> bool:
    return state in DEPLOYMENT_TRANSITIONS[action][0]


def deployment_target(action: str) -> str:
    return DEPLOYMENT_TRANSITIONS[action][1]


def target(action: str) -> str | None:
    return TRANSITIONS[action][1]
