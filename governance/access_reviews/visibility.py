"""Who sees, and who is asked to decide, which access-review items (RULES.md A1–A3 read with V2).

Reads only, each one SQL condition, shared by the API, the admin and the portal. A campaign and its
items are seen by security and audit viewers (everything), by holders of ``manage_roles`` or
``review_access`` in a team (that team's items, in any campaign), and by each item's reviewer.
Who may *decide* mirrors ``services.access_review_item_decide``; the service remains the judge.
"""
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from governance import duties
from governance.models import AccessReview, AccessReviewItem
from governance.selectors import duty_assignments, has_duty, sees_all_assignments

TEAM_REVIEW_DUTIES = (duties.MANAGE_ROLES, duties.REVIEW_ACCESS)


def _in_teams_reviewed_by(user, at, field: str) -> Q:
    """``field`` names a team the user holds manage_roles or review_access in."""
    condition = Q()
    for duty in TEAM_REVIEW_DUTIES:
        condition |= Q(**{f"{field}__in": duty_assignments(duty, at=at).filter(user_id=user.pk).values("team_id")})
    return condition


def review_items_visible_to(user, *, at=None) -> QuerySet[AccessReviewItem]:
    if not user.is_authenticated:
        return AccessReviewItem.objects.none()
    at = at or timezone.now()
    if sees_all_assignments(user, at=at):
        return AccessReviewItem.objects.all()
    return AccessReviewItem.objects.filter(
        Q(reviewer_id=user.pk) | _in_teams_reviewed_by(user, at, "assignment__team_id")
    )


def access_reviews_visible_to(user, *, at=None) -> QuerySet[AccessReview]:
    """Campaigns of the teams the user reviews, campaigns over every team when they review any
    team (they then see their teams' items only), and campaigns holding an item they review."""
    if not user.is_authenticated:
        return AccessReview.objects.none()
    at = at or timezone.now()
    if sees_all_assignments(user, at=at):
        return AccessReview.objects.all()
    reviews_a_team = Q()
    for duty in TEAM_REVIEW_DUTIES:
        reviews_a_team |= Exists(duty_assignments(duty, at=at).filter(user_id=user.pk))
    return AccessReview.objects.filter(
        _in_teams_reviewed_by(user, at, "team_id")
        | (Q(team__isnull=True) & reviews_a_team)
        | Q(pk__in=AccessReviewItem.objects.filter(reviewer_id=user.pk).values("review_id"))
    )


def with_item_counts(reviews: QuerySet[AccessReview], items: QuerySet[AccessReviewItem]) -> QuerySet[AccessReview]:
    """Annotate ``items_count`` and ``undecided_count``, counting only ``items`` (what the caller
    sees), with one subquery each rather than a query per campaign."""

    def count(queryset):
        counted = queryset.filter(review_id=OuterRef("pk")).order_by().values("review_id").annotate(n=Count("pk"))
        return Coalesce(Subquery(counted.values("n"), output_field=IntegerField()), 0)

    return reviews.annotate(items_count=count(items), undecided_count=count(items.filter(decision="")))


def _decidable_by(user, at) -> Q:
    """Mirrors ``services._may_decide``: the item's reviewer, a manager of the grant's team, or a
    security-duty holder for items no manager could review."""
    condition = Q(reviewer_id=user.pk) | Q(
        assignment__team_id__in=duty_assignments(duties.MANAGE_ROLES, at=at).filter(user_id=user.pk).values("team_id")
    )
    if has_duty(user, duties.SECURITY_APPROVE, at=at):
        condition |= Q(reviewer_is_security=True)
    return condition


def review_items_awaiting(user, *, at=None) -> QuerySet[AccessReviewItem]:
    """Undecided items of open campaigns the user may decide; never their own grants."""
    if not user.is_authenticated:
        return AccessReviewItem.objects.none()
    at = at or timezone.now()
    return (
        AccessReviewItem.objects.filter(_decidable_by(user, at), review__status=AccessReview.Status.OPEN, decision="")
        .exclude(assignment__user_id=user.pk)
    )


def review_items_decided_in_scope(user, *, at=None) -> QuerySet[AccessReviewItem]:
    """Decided items of open campaigns the user could have decided, newest decision first."""
    if not user.is_authenticated:
        return AccessReviewItem.objects.none()
    at = at or timezone.now()
    return (
        AccessReviewItem.objects.filter(_decidable_by(user, at), review__status=AccessReview.Status.OPEN)
        .exclude(decision="")
        .order_by("-decided_at", "-pk")
    )
