"""Duties are code constants; roles bundle them (RULES.md section 1).

Each duty maps to one permission: environment-scoped duties to guardian object permissions on
``Environment``, team duties to object permissions on ``Team``, global duties to model-level
permissions (declared on ``audit.AuditEvent``).
"""
SUBMIT = "submit"
APPROVE = "approve"
SECURITY_APPROVE = "security_approve"
DEPLOY = "deploy"
MANAGE_ROLES = "manage_roles"
REVIEW_ACCESS = "review_access"
VIEW_AUDIT = "view_audit"
EXPORT_EVIDENCE = "export_evidence"

ENVIRONMENT_DUTIES = (SUBMIT, APPROVE, SECURITY_APPROVE, DEPLOY)
TEAM_DUTIES = (MANAGE_ROLES, REVIEW_ACCESS)
GLOBAL_DUTIES = (VIEW_AUDIT, EXPORT_EVIDENCE)
ALL = ENVIRONMENT_DUTIES + TEAM_DUTIES + GLOBAL_DUTIES

CHOICES = [
    (SUBMIT, "Submit change requests"),
    (APPROVE, "Approve change requests"),
    (SECURITY_APPROVE, "Security approval"),
    (DEPLOY, "Deploy approved changes"),
    (MANAGE_ROLES, "Manage roles in a team"),
    (REVIEW_ACCESS, "Review access in a team"),
    (VIEW_AUDIT, "View the audit trail"),
    (EXPORT_EVIDENCE, "Export evidence bundles"),
]
LABELS = dict(CHOICES)


def codename(duty: str) -> str:
    return f"duty_{duty}"


def permission(duty: str) -> str:
    """The full permission name (``app_label.codename``) a duty is synced to."""
    app = "governance" if duty in ENVIRONMENT_DUTIES + TEAM_DUTIES else "audit"
    return f"{app}.{codename(duty)}"
