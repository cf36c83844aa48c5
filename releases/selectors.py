"""Read queries for releases: visibility (RULES.md V1), the policy context, the dashboard."""
from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from governance import duties
from governance.models import Membership, RoleAssignment
from governance.selectors import has_duty
from releases.models import Approval, ChangeRequest, Deployment, FreezeWindow
from releases.policy import PolicyContext

S = ChangeRequest.State


def sees_all_changes(user, *, at=None) -> bool:
    return user.is_superuser or has_duty(user, duties.VIEW_AUDIT, at=at)


def change_requests_visible_to(user, *, at=None) -> QuerySet[ChangeRequest]:
    """V1: members of the change's team and holders of view_audit; everyone else gets 404.

    A role assignment is held in a team and needs membership of it, so holders of a duty on the
    environment through the change's team are members already; a grant held in another team does
    not open this team's changes (API.md: idev sees none of payments' changes)."""
    if not user.is_authenticated:
        return ChangeRequest.objects.none()
    if sees_all_changes(user, at=at):
        return ChangeRequest.objects.all()
    return ChangeRequest.objects.filter(team_id__in=Membership.objects.filter(user_id=user.pk).values("team_id"))


def deployments_visible_to(user, *, at=None) -> QuerySet[Deployment]:
    return Deployment.objects.filter(change_request__in=change_requests_visible_to(user, at=at))


def with_details(queryset: QuerySet[ChangeRequest]) -> QuerySet[ChangeRequest]:
    """What a change request's representation needs, in a fixed number of queries."""
    return queryset.select_related("team", "environment", "author", "pir_by").prefetch_related(
        "contributors",
        Prefetch("approvals", queryset=Approval.objects.select_related("reviewer")),
    )


def actor_duties(user, environment, *, at: datetime) -> frozenset[str]:
    """The duties ``user`` holds for ``environment`` at ``at`` (one query)."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    rows = (
        RoleAssignment.objects.filter(
            Q(environment=environment) | Q(environment__isnull=True),
            Q(expires_at__isnull=True) | Q(expires_at__gt=at),
            status=RoleAssignment.Status.ACTIVE,
            user_id=user.pk,
        )
        .values_list("role__duties__duty", flat=True)
        .distinct()
    )
    return frozenset(d for d in rows if d)


def policy_context(change_request: ChangeRequest, actor, *, at: datetime | None = None) -> PolicyContext:
    """Load everything ``releases.policy.evaluate`` needs for one change and one actor.

    The change request must come from ``with_details`` (or be re-read here); the count of queries
    does not grow with approvals, grants or other requests."""
    at = at or timezone.now()
    cr = change_request
    environment = cr.environment
    policy = getattr(environment, "approval_policy", None)
    prior_slug, prior_ok = None, True
    if policy is not None and policy.require_prior_environment_id:
        prior_slug = policy.require_prior_environment.slug
        prior_ok = Deployment.objects.filter(
            environment_id=policy.require_prior_environment_id,
            artifact=cr.artifact,
            state=Deployment.State.SUCCEEDED,
        ).exists()
    freezes = tuple(
        FreezeWindow.objects.filter(environments=environment, starts_at__lte=at, ends_at__gt=at).order_by("starts_at")
    )
    return PolicyContext(
        change_request=cr,
        policy=policy,
        contributor_ids=frozenset(u.pk for u in cr.contributors.all()),
        approvals=tuple(cr.approvals.all()),
        actor=actor,
        actor_duties=actor_duties(actor, environment, at=at),
        actor_is_team_member=Membership.objects.filter(user_id=actor.pk, team_id=cr.team_id).exists(),
        active_freezes=freezes,
        prior_environment_slug=prior_slug,
        prior_environment_deployed=prior_ok,
    )


def change_request_for_decision(pk: int, *, lock: bool = False) -> ChangeRequest:
    """A change request with everything the policy needs. ``lock`` first takes the row lock a
    transition needs, so what is read afterwards includes every decision committed before it."""
    if lock:
        ChangeRequest.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True).first()
    return (
        with_details(ChangeRequest.objects.filter(pk=pk))
        .select_related("environment__approval_policy__require_prior_environment")
        .get()
    )
