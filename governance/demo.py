"""The governance half of the demo of API.md (``releases``' seed_demo command adds the rest).
Idempotent: running it again changes nothing that is already in place. Grants go through the same
services as everyone's: the first security officer and manager are bootstrapped (audited as such),
then ``mgr`` grants and ``sec`` approves."""
from datetime import timedelta

from django.utils import timezone

from governance import seeds, services
from governance.controls.services import control_change
from governance.models import ConflictRule, Environment, Membership, Role, RoleAssignment, RoleDuty, Team

PASSWORD = "countersign-demo"  # the published demo personas' password (README)  # nosec B105
TEAMS = [("payments", "Payments", "Europe/London"), ("identity", "Identity", "America/New_York")]
ENVIRONMENTS = [
    ("development", "Development", "development", 1),
    ("staging", "Staging", "staging", 2),
    ("production", "Production", "production", 3),
]
# username, team, is_staff, is_manager
PEOPLE = [
    ("dev", "payments", False, False),
    ("dev2", "payments", False, False),
    ("rev", "payments", False, False),
    ("rev2", "payments", False, False),
    ("sec", "payments", True, False),
    ("ops", "payments", False, False),
    ("mgr", "payments", True, True),
    ("auditor", "payments", True, False),
    ("idev", "identity", False, False),
]
ALL_ENVS = ["development", "staging", "production"]
# username, role, team, environments (None = the role's every-environment scope)
GRANTS = [
    ("dev", "developer", "payments", ALL_ENVS),
    ("dev2", "developer", "payments", ALL_ENVS),
    ("rev", "reviewer", "payments", ["staging", "production"]),
    ("rev2", "reviewer", "payments", ["staging", "production"]),
    ("ops", "operations", "payments", ["staging", "production"]),
    ("auditor", "compliance", "payments", [None]),  # privileged (K6): mgr requests, sec approves
    ("idev", "developer", "identity", ALL_ENVS),
]


def seed_governance() -> dict:
    seeds.ensure(Role, RoleDuty, ConflictRule)
    now = timezone.now()
    expiry = now + timedelta(days=90)
    admin = services.user_provision(username="admin", password=PASSWORD, email="admin@example.com",
                                    is_superuser=True, source="seed_demo")
    teams = {}
    for slug, name, tz in TEAMS:
        if not Team.objects.filter(slug=slug).exists():
            control_change(actor=admin, kind="governance.team", values={"slug": slug, "name": name, "time_zone": tz})
        teams[slug] = Team.objects.get(slug=slug)
    envs = {}
    for slug, name, tier, order in ENVIRONMENTS:
        if not Environment.objects.filter(slug=slug).exists():
            control_change(actor=admin, kind="governance.environment",
                           values={"slug": slug, "name": name, "tier": tier, "order": order})
        envs[slug] = Environment.objects.get(slug=slug)
    people = {}
    for username, team, is_staff, is_manager in PEOPLE:
        people[username] = services.user_provision(
            username=username, password=PASSWORD, email=f"{username}@example.com", is_staff=is_staff,
            source="seed_demo")
        if not Membership.objects.filter(user=people[username], team=teams[team]).exists():
            services.membership_set(actor=admin, team=teams[team], user=people[username], is_manager=is_manager)
    roles = {r.slug: r for r in Role.objects.all()}

    def holds(user, role, team, env):
        return RoleAssignment.objects.open(now).filter(user=user, role=role, team=team, environment=env).first()

    for username, role_slug in (("sec", "security"), ("mgr", "manager")):
        if not holds(people[username], roles[role_slug], teams["payments"], None):
            services.role_assignment_bootstrap(
                user=people[username], role=roles[role_slug], team=teams["payments"],
                justification="Demo: first holder of this role.", expires_at=expiry, source="seed_demo")

    for username, role_slug, team_slug, env_slugs in GRANTS:
        team = teams[team_slug]
        grantor = people["mgr"] if team_slug == "payments" else admin
        for env_slug in env_slugs:
            env = envs[env_slug] if env_slug else None
            existing = holds(people[username], roles[role_slug], team, env)
            if existing is None:
                privileged = services.is_privileged(roles[role_slug], env)
                existing = services.role_grant(
                    actor=grantor, user=people[username], role=roles[role_slug], team=team, environment=env,
                    justification=f"Demo: {username} works as {role_slug}.",
                    expires_at=expiry if privileged else None)
            if existing.status == RoleAssignment.Status.PENDING:
                services.role_assignment_approve(actor=people["sec"], assignment=existing)
    return {"admin": admin, "people": people, "teams": teams, "environments": envs}
