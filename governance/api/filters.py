import django_filters

from governance.models import RoleAssignment


class RoleAssignmentFilter(django_filters.FilterSet):
    """Filters by the names clients use (API.md): usernames and slugs. ``environment`` matches the
    assignment's own environment; grants for every environment have none and match no slug."""

    user = django_filters.CharFilter(field_name="user__username", help_text="Grantee's username.")
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug.")
    environment = django_filters.CharFilter(field_name="environment__slug", help_text="Environment slug.")
    role = django_filters.CharFilter(field_name="role__slug", help_text="Role slug.")
    status = django_filters.ChoiceFilter(choices=RoleAssignment.Status.choices)

    class Meta:
        model = RoleAssignment
        fields = ["user", "team", "environment", "role", "status"]
