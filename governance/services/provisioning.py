"""Grants the identity provider asks for, and grants that end because a person left (issue 17;
docs/identity.md). The same door as every grant: each one goes through the grant service's own
steps (``governance.services.grants``), so an identity-provider push can never create an SoD
conflict, skip four-eyes or end a grant without its audit event."""
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import audit
from core.errors import Denied, Reason
from governance.models import Environment, Membership, Role, RoleAssignment, Team
from governance.permissions import sync_permissions
from governance.selectors import is_member
from governance.services.grants import (
    Status,
    _end_grant,
    _lock_assignment,
    _record_grant_event,
    _validate_grant,
    find_conflicts,
    is_privileged,
    lock_user,
    max_privileged_lifetime,
    role_duties,
)
from core.english import possessive


def role_assignments_end_for_leaver(*, user, actor, reason: str, at: datetime) -> list[RoleAssignment]:
    """A leaver (identity.services.leavers): every grant they hold ends now, through ``_end_grant``
    like any other ending; their pending requests, and the pending grant requests they made for
    other people, are withdrawn (rejected) so no second person can approve them after the
    requester left. The caller holds the transaction; each ended grant is its own event."""
    lock_user(user)
    ended = []
    rows = (
        RoleAssignment.objects.select_for_update(of=("self",))
        .select_related("user", "role", "team", "environment")
        .filter(Q(user_id=user.pk, status__in=[Status.ACTIVE, Status.PENDING])
                | Q(requested_by_id=user.pk, status=Status.PENDING))
        .order_by("pk")
    )
    for assignment in rows:
        if assignment.status == Status.ACTIVE:
            _end_grant(assignment, Status.REVOKED, actor=actor, reason=reason, at=at, event="role.revoked",
                       data={"reason": reason, "leaver": user.username})
        else:
            _end_grant(assignment, Status.REJECTED, actor=actor, reason=reason, at=at, event="role.grant_withdrawn",
                       data={"reason": reason, "leaver": user.username})
        ended.append(assignment)
    return ended


@transaction.atomic
def role_grant_provisioned(
    *, actor, user, role: Role, team: Team, environment: Environment | None = None, source: str, at: datetime | None = None,
) -> RoleAssignment:
    """A grant the identity provider's group push asks for (identity.services.groups): the mapping
    from group to role is the authority (an administrator set it up), so no manage_roles is asked
    of ``actor`` (the provisioning account); every other rule of ``role_grant`` holds: an SoD
    conflict is refused (``Denied``, nothing written), a privileged grant waits for a second person
    (G4) and expires within the privileged limit. The grantee joins the team if not a member."""
    at = at or timezone.now()
    duty_set = role_duties(role)
    privileged = is_privileged(role, environment, duty_set)
    expires_at = at + max_privileged_lifetime() if privileged else None
    justification = f"Provisioned by the identity provider: {source}"
    _validate_grant(role=role, environment=environment, justification=justification, expires_at=expires_at,
                    privileged=privileged, at=at)
    user = lock_user(user)
    reasons: list[Reason] = []
    if not user.is_active:
        reasons.append(Reason("inactive_user", f"{possessive(user.username)} account is disabled."))
    conflicts = find_conflicts(user=user, role=role, environment=environment, at=at)
    reasons.extend(c.reason() for c in conflicts if c.exception is None)
    if reasons:
        raise Denied(reasons)
    duplicate = RoleAssignment.objects.filter(
        user_id=user.pk, role=role, team=team, environment=environment, status__in=[Status.ACTIVE, Status.PENDING]
    ).exclude(expires_at__lte=at).first()
    if duplicate is not None:
        return duplicate
    if not is_member(user, team):
        membership = Membership.objects.create(user=user, team=team, joined_at=at)
        audit.record("team.member_added", actor=actor, target=membership, team=team.slug, at=at,
                     data={"user": user.username, "is_manager": False, "source": source})
    exception = next((c.exception for c in conflicts), None)
    assignment = RoleAssignment.objects.create(
        user=user, role=role, team=team, environment=environment, justification=justification,
        status=Status.PENDING if privileged else Status.ACTIVE, requested_by=actor, created_at=at,
        approved_at=None if privileged else at, expires_at=expires_at, sod_exception=exception,
    )
    _record_grant_event("role.grant_requested" if privileged else "role.granted", assignment, actor=actor, at=at,
                        justification=justification, privileged=privileged, provisioned=True, source=source,
                        sod_exception=exception.pk if exception else None)
    if assignment.status == Status.ACTIVE:
        sync_permissions(user, at=at)
    return assignment


@transaction.atomic
def role_assignment_end_provisioned(*, actor, assignment: RoleAssignment, reason: str,
                                    at: datetime | None = None) -> RoleAssignment | None:
    """The provider took the person out of the group that gave this grant: it ends (revoked, or
    withdrawn if still pending). None when it had already ended."""
    at = at or timezone.now()
    assignment = _lock_assignment(assignment)
    if assignment.status == Status.ACTIVE:
        _end_grant(assignment, Status.REVOKED, actor=actor, reason=reason, at=at, event="role.revoked",
                   data={"reason": reason, "provisioned": True})
    elif assignment.status == Status.PENDING:
        _end_grant(assignment, Status.REJECTED, actor=actor, reason=reason, at=at, event="role.grant_withdrawn",
                   data={"reason": reason, "provisioned": True})
    else:
        return None
    return assignment
