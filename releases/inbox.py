"""What is waiting on one person ("waiting on you", issue 18): reviews to do, deployments to run or
retry, their own changes sent back or still drafts, pending privileged grants and control-change
proposals they may decide, open alerts to triage, access-review items due and post-implementation
reviews. Each list is read through the selector or the rule that decides it elsewhere, so the
inbox never offers what the service would refuse for who the person is."""
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from audit.models import Alert
from governance import duties
from governance.access_reviews.visibility import review_items_awaiting
from governance.controls.services import may_decide
from governance.models import ControlChange, RoleAssignment
from governance.selectors import assignments_visible_to, duty_assignments, effective_duties
from releases import selectors, states
from releases.models import Approval, ChangeRequest
from releases.policy import evaluate

ROWS = 25
ALERT_DUTIES = {duties.SECURITY_APPROVE, duties.VIEW_AUDIT}


@dataclass
class Inbox:
    reviews: list = field(default_factory=list)
    deployments: list = field(default_factory=list)
    retries: list = field(default_factory=list)
    mine: list = field(default_factory=list)
    grants: list = field(default_factory=list)
    control_changes: list = field(default_factory=list)
    alerts: list = field(default_factory=list)
    access_review_items: list = field(default_factory=list)
    pir_due: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(getattr(self, name)) for name in self.__dataclass_fields__)


def _retry_queue(user, at: datetime) -> list:
    """Failed changes ``user`` may deploy again now (the policy's retry decision, C5–C8)."""
    approved_by_user = Approval.objects.filter(change_request_id=OuterRef("pk"), reviewer_id=user.pk,
                                               decision=Approval.Decision.APPROVED)
    candidates = list(selectors.with_details(
        selectors.change_requests_visible_to(user, at=at)
        .filter(selectors._holds_for_change_environment(user, [duties.DEPLOY], at), state__in=states.starts("retry"))
        .exclude(author_id=user.pk).exclude(selectors._contributed_by(user)).exclude(Exists(approved_by_user))
    ).order_by("-closed_at", "-pk")[:ROWS])
    contexts = selectors.policy_contexts(candidates, user, at=at)
    return [cr for cr in candidates if evaluate(contexts[cr.pk], "retry", at).allowed]


def _reviews(user, at: datetime) -> list:
    """Reviews ``user`` may do now, those the author asked of them first ("asked of you", marked
    ``asked_of_you``), then the rest in submission order. Asking changes the order, never who may
    review: both come from ``change_requests_awaiting_review``."""
    awaiting = selectors.change_requests_awaiting_review(user, at=at)
    asked_of_user = Exists(ChangeRequest.requested_reviewers.through.objects.filter(
        changerequest_id=OuterRef("pk"), user_id=user.pk))
    asked = list(awaiting.filter(asked_of_user)[:ROWS])
    for cr in asked:
        cr.asked_of_you = True
    return asked + list(awaiting.exclude(pk__in=[cr.pk for cr in asked])[:ROWS - len(asked)])


def _grants_to_approve(user, at: datetime):
    """Pending privileged grants ``user`` may approve (G4, ``governance.services.grants.
    may_approve_grant`` in SQL): neither requester nor grantee; an administrator, a manager of the
    grant's team, or security for its environment (every environment for a grant that spans them)."""
    pending = (assignments_visible_to(user, at=at).filter(status=RoleAssignment.Status.PENDING)
               .exclude(requested_by_id=user.pk).exclude(user_id=user.pk))
    if not (user.is_active and user.is_superuser):
        mine = {"user_id": user.pk}
        security = duty_assignments(duties.SECURITY_APPROVE, at=at).filter(**mine)
        pending = pending.filter(
            Q(team_id__in=duty_assignments(duties.MANAGE_ROLES, at=at).filter(**mine).values("team_id"))
            | Q(environment_id__in=security.filter(environment__isnull=False).values("environment_id"))
            | Q(Exists(security.filter(environment__isnull=True)))
        )
    return pending.select_related("user", "role", "team", "environment", "requested_by").order_by("created_at", "pk")


def waiting_on(user, *, at: datetime | None = None) -> Inbox:
    at = at or timezone.now()
    if not user.is_authenticated or not user.is_active:
        return Inbox()
    held = {duty for duty, _, _ in effective_duties(user, at=at)}
    inbox = Inbox(
        reviews=_reviews(user, at),
        deployments=[cr for cr, decision in selectors.deploy_queue(user, at=at, limit=ROWS) if decision.allowed],
        mine=list(selectors.change_requests_opened_by(user, at=at).filter(state__in=states.AUTHOR_TO_ACT)[:ROWS]),
        pir_due=list(selectors.change_requests_awaiting_pir(user, at=at)[:ROWS]),
        access_review_items=list(
            review_items_awaiting(user, at=at).select_related("assignment__user", "assignment__role", "review__team")
            .order_by("due_at", "pk")[:ROWS]),
    )
    if duties.DEPLOY in held:
        inbox.retries = _retry_queue(user, at)
    if user.is_superuser or held & {duties.MANAGE_ROLES, duties.SECURITY_APPROVE}:
        inbox.grants = list(_grants_to_approve(user, at)[:ROWS])
    # Proposals are few (configuration, not traffic); each is asked of the control plane's own rule.
    proposals = (ControlChange.objects.filter(status=ControlChange.Status.PENDING)
                 .exclude(expires_at__lte=at)
                 .exclude(proposed_by_id=user.pk).exclude(subject_id=user.pk)
                 .select_related("proposed_by").order_by("proposed_at", "pk"))
    inbox.control_changes = [c for c in proposals[:ROWS] if may_decide(user, c, at=at)]
    if user.is_superuser or held & ALERT_DUTIES:
        inbox.alerts = list(Alert.objects.filter(status=Alert.Status.OPEN).exclude(actor_id=user.pk)
                            .order_by("-created_at", "-pk")[:ROWS])
    return inbox
