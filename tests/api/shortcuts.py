"""What the API stories say often: where a grant lives, a date on the wire, the codes of a refusal."""
from datetime import timedelta

from django.utils import timezone

from governance.models import RoleAssignment

ASSIGNMENTS = "/api/v1/role-assignments/"


def assignment_url(assignment, verb: str = "") -> str:
    pk = assignment if isinstance(assignment, int) else assignment.pk
    return f"{ASSIGNMENTS}{pk}/{verb + '/' if verb else ''}"


def in_days(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


def codes(response) -> list[str]:
    return [reason["code"] for reason in response.json()["reasons"]]


def grant_of(user, role_slug: str, environment=None) -> RoleAssignment:
    """The user's active or pending grant of the role (in the given environment, or for all)."""
    return RoleAssignment.objects.get(
        user=user,
        role__slug=role_slug,
        environment=environment,
        status__in=[RoleAssignment.Status.ACTIVE, RoleAssignment.Status.PENDING],
    )
