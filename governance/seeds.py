"""The seeded roles (RULES.md section 1) and conflict rules (G3): written by migration 0002 and
ensured again by ``seed_demo`` (a test runner's flush empties every table, seeded rows included)."""

ROLES = [
    ("developer", "Developer", "environment", False, ["submit"]),
    ("reviewer", "Reviewer", "environment", False, ["approve"]),
    ("security", "Security", "environment_or_all", True, ["approve", "security_approve", "view_audit"]),
    ("operations", "Operations", "environment", False, ["deploy"]),
    ("manager", "Manager", "team", True, ["manage_roles", "review_access"]),
    ("compliance", "Compliance", "global", True, ["view_audit", "export_evidence"]),
]
RULES = [
    ("submit", "deploy", "production", "Whoever writes a change may not deploy it to production."),
    ("approve", "deploy", "production", "Whoever approves changes may not deploy them to production."),
]


def ensure(Role, RoleDuty, ConflictRule) -> None:
    """Create whatever seeded role, duty or rule is missing; change nothing that exists."""
    for slug, name, scope, privileged, duties in ROLES:
        role, _ = Role.objects.get_or_create(slug=slug, defaults={"name": name, "scope": scope, "is_privileged": privileged})
        for duty in duties:
            RoleDuty.objects.get_or_create(role=role, duty=duty)
    for duty_a, duty_b, tier, description in RULES:
        ConflictRule.objects.get_or_create(duty_a=duty_a, duty_b=duty_b, tier=tier, defaults={"description": description})
