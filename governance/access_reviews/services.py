"""Access reviews (RULES.md A1–A3): campaigns, decisions, reminders, escalation and closing. A
revoke decided in a review goes through the grant service."""
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from core.errors import Denied, InvalidState, Reason, Refused
from governance import duties
from governance.models import RoleAssignment, Team
from governance.selectors import has_duty
from governance.services.grants import Status, _end_grant, _lock_assignment, lock_user, role_assignment_revoke
from core.english import possessive


def _review_data(review, **extra) -> dict:
    return {"review": review.pk, "period": review.period, "team": review.team.slug if review.team_id else None, **extra}


def access_review_start(
    *, actor=None, period: str, team: Team | None = None, due_days: int = 14,
    undecided_policy: str = "revoke", at: datetime | None = None,
):
    """A1: start (or resume) the campaign for ``period``; one campaign per period and scope, so the
    schedule and a retried task never create two. Items are built in batches, each batch its own
    transaction, so a worker killed half-way resumes where it stopped."""
    from governance.access_reviews import campaigns as reviews
    from governance.models import AccessReview, AccessReviewItem

    at = at or timezone.now()
    if actor is not None and not (
        actor.is_superuser
        or has_duty(actor, duties.SECURITY_APPROVE, at=at)
        or (team is not None and has_duty(actor, duties.REVIEW_ACCESS, team=team, at=at))
    ):
        raise Denied(Reason("missing_duty", "Starting an access review needs review_access in the team or security_approve."))
    errors = {}
    if undecided_policy not in AccessReview.UndecidedPolicy.values:
        errors["undecided_policy"] = [f"Choose one of {', '.join(AccessReview.UndecidedPolicy.values)}."]
    if not (period or "").strip() or len(period) > AccessReview._meta.get_field("period").max_length:
        errors["period"] = ["Name the period in 1 to 32 characters, e.g. 2026-Q4."]
    if due_days < 1:
        errors["due_days"] = ["A campaign is due at least one day after it starts."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        review, created = AccessReview.objects.get_or_create(
            period=period, team=team,
            defaults={
                "name": f"Access review {period}" + (f" · {team.slug}" if team else ""),
                "started_by": actor, "created_at": at, "due_at": at + timedelta(days=due_days),
                "undecided_policy": undecided_policy,
            },
        )
        if created:
            audit.record("access_review.started", actor=actor, target=review, team=team.slug if team else "",
                         data=_review_data(review, due_at=review.due_at), at=at)
    if review.status != AccessReview.Status.BUILDING:
        return review
    ctx = reviews.load_context(at)
    done = AccessReviewItem.objects.filter(review=review).order_by("-assignment_id").values_list("assignment_id", flat=True).first()
    for batch in reviews.grants_in_batches(team_id=team.pk if team else None, after_id=done or 0, at=at):
        items = []
        for assignment in batch:
            reviewer_id, by_security = reviews.choose_reviewer(ctx, assignment)
            items.append(AccessReviewItem(
                review=review, assignment=assignment, reviewer_id=reviewer_id, reviewer_is_security=by_security,
                due_at=review.due_at, recommendations=reviews.recommendations(ctx, assignment),
            ))
        with transaction.atomic():
            AccessReviewItem.objects.bulk_create(items, ignore_conflicts=True)
    with transaction.atomic():
        review = AccessReview.objects.select_for_update().get(pk=review.pk)
        if review.status == AccessReview.Status.BUILDING:
            review.status = AccessReview.Status.OPEN
            review.save(update_fields=["status"])
            count = review.items.count()
            audit.record("access_review.opened", actor=actor, target=review, team=team.slug if team else "",
                         data=_review_data(review, items=count), at=at)
            _notify_reviewers(review)
    return review


def _notify_reviewers(review) -> None:
    from django.db.models import Count

    from audit.notifications import notify

    users = get_user_model().objects.filter(access_review_items__review=review).annotate(n=Count("access_review_items"))
    for user in users:
        notify("access_review", subject=f"{review.name}: {user.n} grants to review",
               body=f"Please decide keep or revoke for each grant by {review.due_at:%Y-%m-%d}.",
               team=review.team.slug if review.team_id else "", recipients=[user.email])


def _may_decide(actor, item, at) -> bool:
    """The duty is checked at the moment of deciding: a reviewer who has since lost it may not."""
    if actor.pk == item.assignment.user_id:
        return False
    team = item.assignment.team
    return (
        has_duty(actor, duties.MANAGE_ROLES, team=team, at=at)
        or has_duty(actor, duties.REVIEW_ACCESS, team=team, at=at)
        or (item.reviewer_is_security and has_duty(actor, duties.SECURITY_APPROVE, at=at))
    )


@transaction.atomic
def access_review_item_decide(*, actor, item, decision: str, comment: str = "", at: datetime | None = None):
    """A3: keep or revoke one grant; revoke goes through the grant service."""
    from governance.models import AccessReview, AccessReviewItem

    at = at or timezone.now()
    if decision not in AccessReviewItem.Decision.values:
        raise ValidationError({"decision": ["Choose keep or revoke."]})
    if decision == AccessReviewItem.Decision.REVOKE and not (comment or "").strip():
        raise ValidationError({"comment": ["Say why the grant is revoked."]})
    lock_user(item.assignment.user)  # before the chain head, which the audit event takes
    item = AccessReviewItem.objects.select_for_update(of=("self",)).select_related(
        "review", "assignment", "assignment__team", "assignment__user", "assignment__role"
    ).get(pk=item.pk)
    if actor.pk == item.assignment.user_id:
        raise Denied(Reason("self_review", "Nobody reviews their own access."))
    if not _may_decide(actor, item, at):
        raise Denied(Reason("missing_duty", "Only a manager of the team (or security, for items sent to it) decides it."))
    if item.review.status != AccessReview.Status.OPEN or item.decision:
        raise InvalidState("This item is already decided or its campaign is closed.")
    item.decision = decision
    item.decided_by = actor
    item.decided_at = at
    item.comment = (comment or "").strip()
    item.save(update_fields=["decision", "decided_by", "decided_at", "comment"])
    audit.record("access_review.item_decided", actor=actor, target=item, team=item.assignment.team.slug,
                 data={"review": item.review_id, "assignment": item.assignment_id, "decision": decision,
                       "comment": item.comment, "user": item.assignment.user.username}, at=at)
    if decision == AccessReviewItem.Decision.REVOKE and item.assignment.status in (Status.ACTIVE, Status.PENDING):
        role_assignment_revoke(actor=actor, assignment=item.assignment, reason=f"access review: {item.comment}", at=at)
    return item


def item_label(item) -> str:
    """How a refusal or a message names an item: the grant it is about."""
    grant = item.assignment
    where = grant.environment.name if grant.environment_id else "all environments"
    return f"{possessive(grant.user.username)} {grant.role.name} grant in {grant.team.name} ({where})"


@transaction.atomic
def access_review_items_decide(*, actor, items, decision: str, comment: str = "", at: datetime | None = None) -> list:
    """A3 for many items with one comment, all or nothing: each item is decided by
    ``access_review_item_decide`` (its rules unchanged); the first refusal undoes the items decided
    before it and is raised with the item (``refused.item``) named in each reason."""
    at = at or timezone.now()
    items = sorted(items, key=lambda item: item.pk)
    if not items:
        raise ValidationError({"items": ["Choose at least one grant."]})
    # Every grantee first, in one order, so two bulk decisions never wait on each other.
    list(get_user_model().objects.select_for_update(no_key=True).filter(
        pk__in={item.assignment.user_id for item in items}).order_by("pk").values_list("pk", flat=True))
    decided = []
    for item in items:
        try:
            decided.append(access_review_item_decide(actor=actor, item=item, decision=decision, comment=comment, at=at))
        except Refused as refused:
            refused.item = item
            refused.reasons = [Reason(r.code, f"{item_label(item)}: {r.message}") for r in refused.reasons]
            raise
    return decided


def access_reviews_escalate(*, at: datetime | None = None, escalate_after: timedelta = timedelta(days=3)) -> dict:
    """A3: undecided items past due remind their reviewer once; three days later they go to the
    team's managers and security. Each step is audited and happens once per item."""
    from audit.notifications import notify
    from governance.models import AccessReview, AccessReviewItem

    at = at or timezone.now()
    open_items = AccessReviewItem.objects.filter(review__status=AccessReview.Status.OPEN, decision="", due_at__lte=at)
    counts = {"reminded": 0, "escalated": 0}
    for item in open_items.filter(reminded_at__isnull=True).select_related("reviewer", "assignment__team"):
        with transaction.atomic():
            if AccessReviewItem.objects.filter(pk=item.pk, reminded_at__isnull=True).update(reminded_at=at):
                audit.record("access_review.item_reminded", target=item, team=item.assignment.team.slug,
                             data={"review": item.review_id, "reviewer": getattr(item.reviewer, "username", None)}, at=at)
                notify("access_review", subject="Access review overdue", team=item.assignment.team.slug,
                       body=f"Review item #{item.pk} was due {item.due_at:%Y-%m-%d}.",
                       recipients=[getattr(item.reviewer, "email", "")])
                counts["reminded"] += 1
    for item in open_items.filter(
        reminded_at__lte=at - escalate_after, escalated_at__isnull=True
    ).select_related("assignment__team"):
        with transaction.atomic():
            if AccessReviewItem.objects.filter(pk=item.pk, escalated_at__isnull=True).update(escalated_at=at):
                team = item.assignment.team
                managers = duty_holders_emails(duties.MANAGE_ROLES, team=team, at=at)
                security = duty_holders_emails(duties.SECURITY_APPROVE, at=at)
                audit.record("access_review.item_escalated", target=item, team=team.slug,
                             data={"review": item.review_id, "to": sorted(set(managers + security))}, at=at)
                notify("escalation", subject="Access review item escalated", team=team.slug,
                       body=f"Review item #{item.pk} is overdue since {item.due_at:%Y-%m-%d}.",
                       recipients=managers + security)
                counts["escalated"] += 1
    return counts


def duty_holders_emails(duty: str, *, team=None, environment=None, at=None) -> list[str]:
    from governance.selectors import duty_holders

    return [e for e in duty_holders(duty, team=team, environment=environment, at=at).values_list("email", flat=True) if e]


@transaction.atomic
def access_review_close(*, actor=None, review, at: datetime | None = None):
    """A3: close a campaign. Undecided items are never silently kept: they are revoked, or left
    visible with a security alert, as the campaign's policy says."""
    from audit.alerts import raise_alert
    from governance.models import AccessReview

    at = at or timezone.now()
    review = AccessReview.objects.select_for_update(of=("self",)).select_related("team").get(pk=review.pk)
    if actor is not None and not (
        actor.is_superuser
        or has_duty(actor, duties.SECURITY_APPROVE, at=at)
        or (review.team is not None and has_duty(actor, duties.REVIEW_ACCESS, team=review.team, at=at))
    ):
        raise Denied(Reason("missing_duty", "Closing a campaign needs review_access in its team or security_approve."))
    if review.status != AccessReview.Status.OPEN:
        raise InvalidState(f"Only open campaigns close; this one is {review.status}.")
    undecided = list(review.items.filter(decision="").select_related("assignment"))
    # Lock every grantee before the first audit event takes the chain head: lock rows first,
    # then record, as every service does, so no two transactions wait on each other.
    list(get_user_model().objects.select_for_update().filter(
        pk__in={i.assignment.user_id for i in undecided}).order_by("pk").values_list("pk", flat=True))
    revoked = 0
    if review.undecided_policy == AccessReview.UndecidedPolicy.REVOKE:
        for item in undecided:
            if item.assignment.status in (Status.ACTIVE, Status.PENDING):
                _system_revoke(item.assignment, reason=f"access review {review.period} closed without a decision", at=at)
                revoked += 1
    elif undecided:
        raise_alert("access_review_undecided", severity="high",
                    subject=f"{review.name} closed with {len(undecided)} undecided grants",
                    details={"review": review.pk, "items": [i.pk for i in undecided]},
                    team=review.team.slug if review.team_id else "", dedupe_key=f"access_review_undecided:{review.pk}", at=at)
    review.status = AccessReview.Status.CLOSED
    review.closed_at = at
    review.save(update_fields=["status", "closed_at"])
    audit.record("access_review.closed", actor=actor, target=review, team=review.team.slug if review.team_id else "",
                 data=_review_data(review, undecided=len(undecided), revoked=revoked, policy=review.undecided_policy), at=at)
    return review


def _system_revoke(assignment: RoleAssignment, *, reason: str, at: datetime) -> None:
    """Revocation decided by a rule rather than a person (campaign close); audited with no actor."""
    _end_grant(_lock_assignment(assignment), Status.REVOKED, actor=None, reason=reason, at=at, event="role.revoked",
               data={"reason": reason})


def access_reviews_close_overdue(*, at: datetime | None = None, grace: timedelta = timedelta(days=7)) -> int:
    """Close campaigns a week past their due date (the schedule calls this)."""
    from governance.models import AccessReview

    at = at or timezone.now()
    closed = 0
    for review in AccessReview.objects.filter(status=AccessReview.Status.OPEN, due_at__lte=at - grace):
        access_review_close(review=review, at=at)
        closed += 1
    return closed


def access_review_items_reassign_for_leaver(*, leaver, manager, actor, at: datetime) -> list:
    """A leaver's undecided items of open campaigns go to their manager (identity.services.leavers):
    ``manager`` if it is another enabled account, else a manager of the grant's team, else security
    (as for items nobody else may review). One event per item; the new reviewer is told."""
    from audit.notifications import notify
    from governance.models import AccessReview, AccessReviewItem, Membership

    items = list(
        AccessReviewItem.objects.select_for_update(of=("self",))
        .select_related("assignment__team", "assignment__user", "review")
        .filter(reviewer_id=leaver.pk, decision="", review__status=AccessReview.Status.OPEN)
        .order_by("pk")
    )
    usable = manager is not None and manager.is_active and manager.pk != leaver.pk
    for item in items:
        reviewer = manager if usable and manager.pk != item.assignment.user_id else None
        if reviewer is None:
            reviewer = next(
                (m.user for m in Membership.objects.select_related("user").filter(
                    team_id=item.assignment.team_id, is_manager=True, user__is_active=True).order_by("user_id")
                 if m.user_id not in (leaver.pk, item.assignment.user_id)),
                None,
            )
        item.reviewer = reviewer
        item.reviewer_is_security = reviewer is None
        item.save(update_fields=["reviewer", "reviewer_is_security"])
        to = reviewer.username if reviewer is not None else "security"
        audit.record("access_review.item_reassigned", actor=actor, target=item, team=item.assignment.team.slug,
                     data={"review": item.review_id, "from": leaver.username, "to": to, "reason": "reviewer left"},
                     at=at)
        notify("access_review", subject="Access review items reassigned to you", team=item.assignment.team.slug,
               body=f"Review item #{item.pk} of {item.review.name} was {possessive(leaver.username)}, who left; it is yours now.",
               recipients=[reviewer.email] if reviewer is not None else duty_holders_emails(duties.SECURITY_APPROVE, at=at))
    return items
