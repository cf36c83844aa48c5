"""Deterministic bulk data for benchmarks: users, memberships and active grants, inserted in bulk
(setup, not the thing measured)."""
from django.contrib.auth import get_user_model

from governance.models import Environment, Membership, Role, RoleAssignment, Team


def grants(count: int, *, teams: int = 50) -> None:
    """``count`` active developer grants spread over ``teams`` teams, one per user."""
    users_model = get_user_model()
    environment, _ = Environment.objects.get_or_create(
        slug="bench-dev", defaults={"name": "Bench development", "tier": "development"}
    )
    role = Role.objects.get(slug="developer")
    team_rows = [Team(slug=f"bench-team-{n}", name=f"Bench team {n}") for n in range(teams)]
    Team.objects.bulk_create(team_rows, ignore_conflicts=True)
    team_list = list(Team.objects.filter(slug__startswith="bench-team-").order_by("pk"))
    users = users_model.objects.bulk_create(
        [users_model(username=f"bench{n}", email=f"bench{n}@example.com") for n in range(count)], batch_size=2000
    )
    Membership.objects.bulk_create(
        [Membership(user=u, team=team_list[n % teams]) for n, u in enumerate(users)], batch_size=2000
    )
    RoleAssignment.objects.bulk_create(
        [
            RoleAssignment(user=u, role=role, team=team_list[n % teams], environment=environment,
                           justification="bench", status="active")
            for n, u in enumerate(users)
        ],
        batch_size=2000,
    )
