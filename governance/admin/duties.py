"""Who may do what in the admin: the duties the user holds now, read once per request (RULES.md
V2, V4), and the base of the governance admin pages (read by role managers, security and audit
viewers)."""
from core.admin import ServiceOnlyHistoryAdmin
from core.memo import per_request
from governance import duties, selectors
from governance.models import Team


def held_duties(request) -> list[tuple[str, int | None, int]]:
    """(duty, environment id, team id) the user holds now, read in one query."""
    return per_request(request, "duties", lambda: selectors.effective_duties(request.user))


def holds_duty(request, duty: str, *, team: Team | None = None) -> bool:
    return any(held == duty and (team is None or team_id == team.pk) for held, _, team_id in held_duties(request))


def may_manage_roles(request, team: Team | None = None) -> bool:
    return request.user.is_superuser or holds_duty(request, duties.MANAGE_ROLES, team=team)


def is_security(request) -> bool:
    return holds_duty(request, duties.SECURITY_APPROVE)


def configures_controls(request) -> bool:
    """Who reads the admin pages of the configuration controls (channels, schedules, linked
    repositories, group mappings): active staff who are superusers or hold security_approve."""
    user = request.user
    return user.is_active and user.is_staff and (user.is_superuser or is_security(request))


def sees_all_assignments(request) -> bool:
    """Mirrors ``selectors.sees_all_assignments`` from the memoised duties (V2)."""
    return request.user.is_superuser or is_security(request) or holds_duty(request, duties.VIEW_AUDIT)


def is_governance_staff(request) -> bool:
    """Staff who have business in the governance admin: role managers, security, audit viewers."""
    user = request.user
    return user.is_active and user.is_staff and (sees_all_assignments(request) or may_manage_roles(request))


class GovernanceAdmin(ServiceOnlyHistoryAdmin):
    """A governance page: read by role managers, security and audit viewers."""

    def may_read(self, request) -> bool:
        return is_governance_staff(request)
