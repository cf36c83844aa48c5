"""Every write to the governance domain (ARCHITECTURE.md principle 1), one module per topic: grants
(G1–G5), SoD exceptions (G3), memberships and provisioned accounts, grants the identity provider
pushes or a leaver loses (provisioning), API keys, accounts' passwords
and lockouts (K5). Controls have their own door (``governance.controls.services``), access reviews
theirs (``governance.access_reviews.services``).

Each service checks its rules, changes state, re-syncs derived permissions and records one audit
event, in one transaction. Refusals raise ``Denied`` (403, all reasons), ``InvalidState`` (409) or
``ValidationError`` (400, field messages); nothing is written when they do. The names below are the
package's public face: callers write ``services.role_grant(...)``.
"""
from governance.access_reviews.services import (
    access_review_close,
    access_review_item_decide,
    access_review_items_decide,
    access_review_items_reassign_for_leaver,
    access_review_start,
    access_reviews_close_overdue,
    access_reviews_escalate,
    duty_holders_emails,
)
from governance.conflicts import Conflict
from governance.services.exceptions import sod_exception_approve, sod_exception_request, sod_exception_revoke
from governance.services.grants import (
    duties_used,
    find_conflicts,
    is_privileged,
    lock_user,
    max_privileged_lifetime,
    role_assignment_approve,
    role_assignment_bootstrap,
    role_assignment_reject,
    role_assignment_revoke,
    role_assignments_expire_due,
    role_duties,
    role_grant,
)
from governance.services.provisioning import (
    role_assignment_end_provisioned,
    role_assignments_end_for_leaver,
    role_grant_provisioned,
)
from governance.services.organisation import membership_remove, membership_set, user_provision
from governance.services.tokens import api_token_create, api_token_revoke, api_token_touch, api_tokens_revoke_for_leaver

__all__ = [
    "Conflict", "access_review_close", "access_review_item_decide", "access_review_items_decide", "access_review_items_reassign_for_leaver", "access_review_start",
    "access_reviews_close_overdue", "access_reviews_escalate", "api_token_create", "api_token_revoke",
    "api_token_touch", "api_tokens_revoke_for_leaver", "duties_used", "duty_holders_emails", "find_conflicts", "is_privileged", "lock_user",
    "max_privileged_lifetime", "membership_remove", "membership_set", "role_assignment_approve",
    "role_assignment_bootstrap", "role_assignment_reject", "role_assignment_revoke", "role_assignment_end_provisioned", "role_assignments_end_for_leaver", "role_grant_provisioned", "role_assignments_expire_due",
    "role_duties", "role_grant", "sod_exception_approve", "sod_exception_request", "sod_exception_revoke",
    "user_provision",
]
