import django_filters

from governance.models import RoleAssignment


class IdFilter(django_filters.NumberFilter):
    """An object id in the query string: a whole number the database's bigint can hold, else 400
    in the field-errors shape. A plain NumberFilter let ``?review=-9e266`` reach the database,
    which overflowed and answered 500 (found by tests/security/test_fuzz.py)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        kwargs.setdefault("decimal_places", 0)
        super().__init__(*args, **kwargs)


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
