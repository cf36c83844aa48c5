"""Who belongs where (teams' members and managers) and the accounts the seed and setup commands
provision. Teams, environments, roles and rules themselves are controls (``governance.controls``)."""
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

import audit
from core.errors import Denied, Reason
from governance.models import Membership, RoleAssignment, Team
from governance.services.grants import Status, _can_administer_grants, role_assignment_revoke


@transaction.atomic
def membership_set(*, actor, team: Team, user, is_manager: bool = False) -> Membership:
    """Add a user to a team, or change whether they manage it."""
    if not _can_administer_grants(actor, team, timezone.now()):
        raise Denied(Reason("missing_duty", f"Changing members needs manage_roles in team {team.slug}."))
    membership, created = Membership.objects.get_or_create(team=team, user=user, defaults={"is_manager": is_manager})
    if not created and membership.is_manager != is_manager:
        membership.is_manager = is_manager
        membership.save(update_fields=["is_manager"])
    elif not created:
        return membership
    audit.record(
        "team.member_added" if created else "team.member_changed",
        actor=actor,
        target=membership,
        team=team.slug,
        data={"user": user.username, "is_manager": is_manager},
    )
    return membership


@transaction.atomic
def membership_remove(*, actor, membership: Membership) -> None:
    """Remove a member. Their grants in the team are revoked with it: access follows membership."""
    team = membership.team
    if not _can_administer_grants(actor, team, timezone.now()):
        raise Denied(Reason("missing_duty", f"Changing members needs manage_roles in team {team.slug}."))
    user = membership.user
    for assignment in RoleAssignment.objects.filter(
        user_id=user.pk, team=team, status__in=[Status.ACTIVE, Status.PENDING]
    ):
        role_assignment_revoke(actor=actor, assignment=assignment, reason=f"left team {team.slug}")
    audit.record("team.member_removed", actor=actor, target=membership, team=team.slug, data={"user": user.username})
    membership.delete()


@transaction.atomic
def user_provision(*, username: str, password: str, email: str = "", is_staff: bool = False,
                   is_superuser: bool = False, source: str):
    """Create an account (seed and setup commands); recorded so the trail starts with its people."""
    users = get_user_model()
    user = users.objects.filter(username=username).first()
    if user is not None:
        return user
    user = users(username=username, email=users.objects.normalize_email(email), is_staff=is_staff or is_superuser,
                 is_superuser=is_superuser)
    user.set_password(password)
    user._countersign_control_change = True  # recorded below, as the seed's provisioning
    user.save()
    audit.record("user.provisioned", actor=None, target=user,
                 data={"username": username, "is_staff": is_staff, "is_superuser": is_superuser, "source": source})
    return user
