"""Groups the identity provider pushes (SCIM Groups), and the grants their mappings give.

A ``GroupRoleMapping`` says that members of the group named so hold a role in a team (and
environment). Adding a member asks the grant service for each mapped role
(``role_grant_provisioned``): an SoD conflict is refused for that person, in a savepoint, so
nothing of theirs changes (not even the membership) while the other members go ahead, and an alert
names the group; a privileged role waits for a second person's approval as any grant does.
Removing a member ends the grants the group gave.
"""
from datetime import datetime

from django.db import transaction
from django.utils import timezone

import audit
from audit.alerts import raise_alert
from core.errors import Denied
from governance import services as governance_services
from identity.models import GroupGrant, GroupRoleMapping, ScimGroup


def _add_member(group: ScimGroup, user, *, actor, at) -> bool:
    """Grant what the group maps to and record the membership; False (and an alert) if refused."""
    try:
        with transaction.atomic():
            if user.is_active:
                for mapping in GroupRoleMapping.objects.filter(group_name=group.display_name, is_active=True).select_related(
                        "role", "team", "environment"):
                    assignment = governance_services.role_grant_provisioned(
                        actor=actor, user=user, role=mapping.role, team=mapping.team, environment=mapping.environment,
                        source=f"group {group.display_name}", at=at)
                    GroupGrant.objects.get_or_create(assignment=assignment, defaults={"mapping": mapping})
            group.members.add(user)
            audit.record("scim.group_member_added", actor=actor, target=group, at=at,
                         data={"group": group.display_name, "user": user.username})
    except Denied as refused:
        reasons = [r.message for r in refused.reasons]
        raise_alert("scim_group_conflict", severity="high", actor=user, at=at,
                    subject=f"Group {group.display_name}: not applied to {user.username} (separation of duties)",
                    details={"group": group.display_name, "user": user.username, "reasons": reasons},
                    dedupe_key=f"scim_group_conflict:{group.pk}:{user.pk}")
        audit.record("scim.group_member_refused", actor=actor, target=group, at=at,
                     data={"group": group.display_name, "user": user.username, "reasons": reasons})
        return False
    return True


def _remove_member(group: ScimGroup, user, *, actor, at) -> None:
    for grant in GroupGrant.objects.filter(mapping__group_name=group.display_name,
                                           assignment__user=user).select_related("assignment"):
        governance_services.role_assignment_end_provisioned(
            actor=actor, assignment=grant.assignment, reason=f"removed from group {group.display_name}", at=at)
    group.members.remove(user)
    audit.record("scim.group_member_removed", actor=actor, target=group, at=at,
                 data={"group": group.display_name, "user": user.username})


@transaction.atomic
def group_set_members(*, actor, group: ScimGroup, users, at: datetime | None = None) -> list:
    """Make ``users`` the group's members. Returns the users refused (SoD conflicts)."""
    at = at or timezone.now()
    current = {u.pk: u for u in group.members.all()}
    wanted = {u.pk: u for u in users}
    refused = []
    for pk in sorted(set(current) - set(wanted)):
        _remove_member(group, current[pk], actor=actor, at=at)
    for pk in sorted(set(wanted) - set(current)):
        if not _add_member(group, wanted[pk], actor=actor, at=at):
            refused.append(wanted[pk])
    return refused


@transaction.atomic
def group_create(*, actor, display_name: str, external_id: str = "", users=(), at: datetime | None = None):
    at = at or timezone.now()
    group = ScimGroup.objects.create(display_name=display_name, external_id=external_id, created_at=at, updated_at=at)
    audit.record("scim.group_created", actor=actor, target=group, at=at,
                 data={"group": display_name, "external_id": external_id})
    group_set_members(actor=actor, group=group, users=users, at=at)
    return group


@transaction.atomic
def group_update(*, actor, group: ScimGroup, display_name: str, external_id: str, users,
                 at: datetime | None = None) -> ScimGroup:
    """Rename and set members. A rename changes which mappings apply, so the members leave under
    the old name and join under the new one (their grants follow the mappings)."""
    at = at or timezone.now()
    group = ScimGroup.objects.select_for_update().get(pk=group.pk)
    users = list(users)
    if display_name != group.display_name:
        group_set_members(actor=actor, group=group, users=[], at=at)
        audit.record("scim.group_renamed", actor=actor, target=group, at=at,
                     data={"before": group.display_name, "after": display_name})
        group.display_name = display_name
    group.external_id = external_id
    group.updated_at = at
    group.save()
    group_set_members(actor=actor, group=group, users=users, at=at)
    return group


@transaction.atomic
def group_delete(*, actor, group: ScimGroup, at: datetime | None = None) -> None:
    at = at or timezone.now()
    group_set_members(actor=actor, group=group, users=[], at=at)
    audit.record("scim.group_deleted", actor=actor, target=group, at=at, data={"group": group.display_name})
    group.delete()
