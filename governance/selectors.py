"""Read queries shared by the admin, the API, the portal, the services and the tasks."""
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from governance import duties
from governance.models import Environment, Membership, RoleAssignment, Team


def _scope(duty: str, environment: Environment | None, team: Team | None) -> Q:
    if duty in duties.ENVIRONMENT_DUTIES and environment is not None:
        return Q(environment=environment) | Q(environment__isnull=True)
    if duty in duties.TEAM_DUTIES and team is not None:
        return Q(team=team)
    return Q()


def duty_assignments(duty: str, *, environment=None, team=None, at=None) -> QuerySet[RoleAssignment]:
    """Assignments in force that carry ``duty`` for the scope (any scope when none is given)."""
    at = at or timezone.now()
    return RoleAssignment.objects.in_force(at).filter(_scope(duty, environment, team), role__duties__duty=duty)


def has_duty(user, duty: str, *, environment=None, team=None, at=None) -> bool:
    """Does ``user`` hold ``duty`` for the environment (or team) at ``at``? One indexed query.

    Reads the role assignments themselves, so a grant stops counting the moment it expires or is
    revoked, whatever the scheduled tasks have done yet. Superusers get no bypass."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    at = at or timezone.now()
    return RoleAssignment.objects.in_force(at).filter(
        _scope(duty, environment, team), user_id=user.pk, role__duties__duty=duty
    ).exists()


def has_duty_everywhere(user, duty: str, *, at=None) -> bool:
    """Does ``user`` hold ``duty`` through a grant for every environment (K6: powers that span all
    environments need such a grant; one environment's grant counts only there)?"""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    at = at or timezone.now()
    return RoleAssignment.objects.in_force(at).filter(
        user_id=user.pk, environment__isnull=True, role__duties__duty=duty
    ).exists()


def has_duty_for(user, duty: str, environment: Environment | None, *, at=None) -> bool:
    """K6: the duty for this environment (its own grant or an every-environment one); for what
    concerns no single environment (``None``), an every-environment grant."""
    if environment is None:
        return has_duty_everywhere(user, duty, at=at)
    return has_duty(user, duty, environment=environment, at=at)


def duty_holders(duty: str, *, environment=None, team=None, at=None) -> QuerySet:
    """Active users who hold ``duty`` for the scope."""
    holder_ids = duty_assignments(duty, environment=environment, team=team, at=at).values("user_id")
    return get_user_model().objects.filter(is_active=True, pk__in=holder_ids).order_by("username")


def _every_environment_first(held: tuple[str, int | None, int]) -> tuple:
    """Sort key for ``effective_duties``' rows: one duty may be held for every environment (None)
    and for one environment at once, and None does not compare with an id."""
    duty, environment_id, team_id = held
    return duty, environment_id is not None, environment_id or 0, team_id


def effective_duties(user, *, at=None) -> list[tuple[str, int | None, int]]:
    """(duty, environment id or None for every environment, team id) for each duty ``user`` holds,
    by duty, the every-environment grant before the per-environment ones."""
    at = at or timezone.now()
    rows = (
        RoleAssignment.objects.in_force(at).filter(user_id=user.pk)
        .order_by()
        .values_list("role__duties__duty", "environment_id", "team_id")
        .distinct()
    )
    return sorted((row for row in rows if row[0] is not None), key=_every_environment_first)


def teams_managed_by(user, *, at=None) -> QuerySet[Team]:
    if user.is_superuser:
        return Team.objects.all()
    team_ids = duty_assignments(duties.MANAGE_ROLES, at=at).filter(user_id=user.pk).values("team_id")
    return Team.objects.filter(pk__in=team_ids)


def sees_all_assignments(user, *, at=None) -> bool:
    return user.is_superuser or has_duty(user, duties.SECURITY_APPROVE, at=at) or has_duty(user, duties.VIEW_AUDIT, at=at)


def assignments_visible_to(user, *, at=None) -> QuerySet[RoleAssignment]:
    """V2: the grantee, managers of the assignment's team, security and audit viewers."""
    if not user.is_authenticated:
        return RoleAssignment.objects.none()
    if sees_all_assignments(user, at=at):
        return RoleAssignment.objects.all()
    managed = duty_assignments(duties.MANAGE_ROLES, at=at).filter(user_id=user.pk).values("team_id")
    return RoleAssignment.objects.filter(Q(user_id=user.pk) | Q(team_id__in=managed))


def members_grantable_by(user, *, at=None) -> QuerySet:
    """Users a manager may grant roles to: members of the teams they manage, never themselves."""
    team_ids = teams_managed_by(user, at=at).values("pk")
    member_ids = Membership.objects.filter(team_id__in=team_ids).values("user_id")
    return get_user_model().objects.filter(pk__in=member_ids, is_active=True).exclude(pk=user.pk).order_by("username")


def is_member(user, team: Team) -> bool:
    return Membership.objects.filter(user_id=user.pk, team_id=team.pk).exists()
