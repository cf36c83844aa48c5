"""The ways back in the change request's state machine (issue 18: no dead ends): the author
withdraws a change from review, and an approved change whose approvals expired is sent back for
review. Requesting changes (``services.change_request_request_changes``), resubmitting
(``services.change_request_submit``) and retrying a failed deployment
(``services.deployment_retry``) sit beside the decisions and deployments they mirror.

Like every service: lock the change, check ``releases.states``, refuse with reason codes, write one
audit event."""
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.errors import Denied, InvalidState, Reason
from governance import duties
from governance.selectors import has_duty
from releases import policy, states
from releases.models import ChangeRequest
from releases.selectors import change_request_for_decision, policy_context
from releases.services import _record, _require_transition, _settle_approvals, start_revision


@transaction.atomic
def change_request_withdraw(
    *, actor, change_request: ChangeRequest, reason: str = "", at: datetime | None = None
) -> ChangeRequest:
    """The author takes a pending change, or one sent back for changes, out of review: it is a
    draft again, at a new revision, so whatever reviewers decided goes stale (C3); submitting it
    again asks them afresh."""
    at = at or timezone.now()
    cr = change_request_for_decision(change_request.pk, lock=True)
    _require_transition("withdraw", cr)
    if actor.pk != cr.author_id:
        raise Denied(Reason("not_author", "Only the author withdraws a change request from review."))
    from_state = cr.state
    start_revision(cr, at, state=states.target("withdraw"), submitted_at=None, reminded_at=None,
                   escalated_at=None)
    cr = change_request_for_decision(cr.pk)
    _record("change_request.withdrawn", cr, actor=actor, at=at, from_state=from_state,
            reason=(reason or "").strip())
    return cr


@transaction.atomic
def change_request_re_review(
    *, actor, change_request: ChangeRequest, comment: str = "", at: datetime | None = None
) -> ChangeRequest:
    """An approved change whose approvals expired (the policy's ``approval_ttl_hours``) cannot be
    deployed (``approvals_expired``), nor one whose policy now asks for more
    (``approvals_insufficient``), nor can a failed one be retried; its author, or a manager of
    the team, sends it back for review. It is pending again at a new revision of the same content: the expired approvals go
    stale and the reviewers, the same ones included, decide afresh."""
    at = at or timezone.now()
    cr = change_request_for_decision(change_request.pk, lock=True)
    _require_transition("re_review", cr)
    if actor.pk != cr.author_id and not has_duty(actor, duties.MANAGE_ROLES, team=cr.team, at=at):
        raise Denied(Reason("not_author", "Only the author or a manager of the team sends a change back for review."))
    status = policy.approval_status(policy_context(cr, actor, at=at), at)
    if status.met:
        raise InvalidState("Its approvals still count: the change can be deployed as it is.",
                           code="approvals_not_expired")
    from_state = cr.state
    start_revision(cr, at, state=states.target("re_review"), submitted_at=at, reminded_at=None, escalated_at=None,
                   closed_at=None)
    _settle_approvals(change_request_for_decision(cr.pk), actor, at)
    cr = change_request_for_decision(cr.pk)
    _record("change_request.re_review_requested", cr, actor=actor, at=at, from_state=from_state,
            comment=(comment or "").strip(), expired_approvals=len(status.expired))
    return cr
