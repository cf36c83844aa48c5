"""Guardian rows are derived from role assignments (ARCHITECTURE.md principle 3).

``sync_permissions(user)`` is the only writer of duty permissions: it computes what the user's
assignments in force imply and adds or removes guardian object permissions (environments, teams)
and model-level permissions (global duties) until the two agree.
"""
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from guardian.models import UserObjectPermission

from governance import duties
from governance.models import Environment, RoleAssignment, Team

DUTY_CODENAMES = {duties.codename(d): d for d in duties.ALL}


def _permissions() -> dict[str, Permission]:
    """Duty permissions keyed by codename (one query)."""
    return {
        p.codename: p
        for p in Permission.objects.filter(codename__in=DUTY_CODENAMES).select_related("content_type")
    }


def expected_permissions(user, *, at=None) -> tuple[set[tuple[str, str]], set[str]]:
    """What the user's assignments in force imply: ({(codename, object pk)}, {global codenames})."""
    at = at or timezone.now()
    object_perms: set[tuple[str, str]] = set()
    global_perms: set[str] = set()
    if not user.is_active:
        return object_perms, global_perms
    rows = (
        RoleAssignment.objects.in_force(at)
        .filter(user_id=user.pk)
        .values_list("role__duties__duty", "environment_id", "team_id")
    )
    all_environments = None
    for duty, environment_id, team_id in rows:
        if duty is None:
            continue
        code = duties.codename(duty)
        if duty in duties.ENVIRONMENT_DUTIES:
            if environment_id is None:
                if all_environments is None:
                    all_environments = [str(pk) for pk in Environment.objects.values_list("pk", flat=True)]
                object_perms.update((code, pk) for pk in all_environments)
            else:
                object_perms.add((code, str(environment_id)))
        elif duty in duties.TEAM_DUTIES:
            object_perms.add((code, str(team_id)))
        else:
            global_perms.add(code)
    return object_perms, global_perms


def actual_permissions(user) -> tuple[set[tuple[str, str]], set[str]]:
    object_perms = set(
        UserObjectPermission.objects.filter(user_id=user.pk, permission__codename__in=DUTY_CODENAMES).values_list(
            "permission__codename", "object_pk"
        )
    )
    global_perms = set(
        user.user_permissions.filter(codename__in=DUTY_CODENAMES).values_list("codename", flat=True)
    )
    return object_perms, global_perms


def sync_permissions(user, *, at=None) -> None:
    """Make the user's guardian and model permissions equal what their assignments imply."""
    want_objects, want_global = expected_permissions(user, at=at)
    have_objects, have_global = actual_permissions(user)
    if want_objects == have_objects and want_global == have_global:
        return
    perms = _permissions()
    content_types = {
        Environment: ContentType.objects.get_for_model(Environment),
        Team: ContentType.objects.get_for_model(Team),
    }
    stale = have_objects - want_objects
    if stale:
        for codename, object_pk in stale:
            UserObjectPermission.objects.filter(
                user_id=user.pk, permission=perms[codename], object_pk=object_pk
            ).delete()
    missing = want_objects - have_objects
    if missing:
        UserObjectPermission.objects.bulk_create(
            [
                UserObjectPermission(
                    user_id=user.pk,
                    permission=perms[codename],
                    content_type=content_types[
                        Environment if DUTY_CODENAMES[codename] in duties.ENVIRONMENT_DUTIES else Team
                    ],
                    object_pk=object_pk,
                )
                for codename, object_pk in missing
            ]
        )
    if have_global - want_global:
        user.user_permissions.remove(*(perms[c] for c in have_global - want_global))
    if want_global - have_global:
        user.user_permissions.add(*(perms[c] for c in want_global - have_global))
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)


def drift(user, *, at=None) -> dict[str, set]:
    """Permissions held that no assignment explains, and implied ones that are missing."""
    want_objects, want_global = expected_permissions(user, at=at)
    have_objects, have_global = actual_permissions(user)
    return {
        "unexplained": (have_objects - want_objects) | {(c, "") for c in have_global - want_global},
        "missing": (want_objects - have_objects) | {(c, "") for c in want_global - have_global},
    }
