"""The datasets of an evidence bundle, one module per dataset: which rows (the population), which
columns, and which rows are exceptions an auditor should look at. What they share is in
``base``."""
from compliance.evidence.datasets.access_reviews import ACCESS_REVIEWS
from compliance.evidence.datasets.alerts import ALERTS
from compliance.evidence.datasets.audit_events import AUDIT_EVENTS
from compliance.evidence.datasets.base import (
    NO_POLICY, Context, Dataset, load_control_history, load_lookups, policy_at,
)
from compliance.evidence.datasets.control_changes import CONTROL_CHANGES, control_changes_for_report
from compliance.evidence.datasets.deployment_reconciliation import DEPLOYMENT_RECONCILIATION
from compliance.evidence.datasets.deployments import CHANGES, DEPLOYMENT_FIELDS, PRODUCTION_DEPLOYMENTS
from compliance.evidence.datasets.grants import GRANT_FIELDS, OPEN_STATUSES, ROLE_GRANTS
from compliance.evidence.datasets.leavers import LEAVERS
from compliance.evidence.datasets.sod import CONFLICT_RULES, SOD_EXCEPTIONS
from compliance.evidence.datasets.verification import AUDIT_VERIFICATION

__all__ = [
    "ACCESS_REVIEWS", "ALERTS", "AUDIT_EVENTS", "AUDIT_VERIFICATION", "CHANGES", "CONFLICT_RULES", "CONTROL_CHANGES",
    "Context", "DEPLOYMENT_FIELDS", "DEPLOYMENT_RECONCILIATION", "Dataset", "GRANT_FIELDS", "LEAVERS", "NO_POLICY", "OPEN_STATUSES",
    "PRODUCTION_DEPLOYMENTS", "ROLE_GRANTS", "SOD_EXCEPTIONS", "control_changes_for_report", "load_control_history",
    "load_lookups", "policy_at",
]
