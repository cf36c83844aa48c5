import django_filters
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field

from governance import duties
from governance.api.filters import IdFilter
from governance.selectors import duty_assignments
from releases import states
from releases.models import Approval, ChangeRequest, Deployment, RevisionContributor


def awaiting(user, *, at=None) -> Q:
    """Pending changes ``user`` is asked to decide: they hold approve or security_approve for the
    environment, did not write or contribute to the change, and have not decided its current
    revision (C2, C3). One SQL condition, so a list filtered by it costs what any list costs.

    Production changes count too: the caller is still awaited there, through the portal's sign-off."""
    at = at or timezone.now()
    grant_for_environment = Q(environment_id=OuterRef("environment_id")) | Q(environment__isnull=True)
    holds_approve = Exists(
        duty_assignments(duties.APPROVE, at=at).filter(grant_for_environment, user_id=user.pk)
    ) | Exists(duty_assignments(duties.SECURITY_APPROVE, at=at).filter(grant_for_environment, user_id=user.pk))
    contributed = Exists(  # in any revision (C2)
        RevisionContributor.objects.filter(change_request_id=OuterRef("pk"), user_id=user.pk)
    )
    decided = Exists(
        Approval.objects.filter(
            change_request_id=OuterRef("pk"), reviewer_id=user.pk, revision=OuterRef("revision"), stale=False
        )
    )
    return Q(state__in=states.starts("approve")) & holds_approve & ~Q(author_id=user.pk) & ~contributed & ~decided


AWAITING_ME = (
    "true: pending changes the caller may decide now (holds approve or security_approve on the environment, "
    "is neither author nor contributor of any revision, has not decided this revision); false: all others."
)


class ChangeRequestFilter(django_filters.FilterSet):
    """Filters by the names clients use (API.md): slugs and usernames."""

    state = django_filters.ChoiceFilter(choices=ChangeRequest.State.choices)
    environment = django_filters.CharFilter(field_name="environment__slug", help_text="Environment slug.")
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug.")
    author = django_filters.CharFilter(field_name="author__username", help_text="Author's username.")
    # Strictly true or false: a value the filter ignored would hand CI every change instead of its queue.
    awaiting_me = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        coerce=lambda value: value == "true",
        method="filter_awaiting_me",
        help_text=AWAITING_ME,
    )

    class Meta:
        model = ChangeRequest
        fields = ["state", "environment", "team", "author", "awaiting_me"]

    @extend_schema_field({"type": "boolean", "description": AWAITING_ME})
    def filter_awaiting_me(self, queryset, name, value):
        condition = awaiting(self.request.user)
        return queryset.filter(condition) if value else queryset.exclude(condition)


class DeploymentFilter(django_filters.FilterSet):
    change_request = IdFilter(field_name="change_request__id", help_text="Change request id.")
    environment = django_filters.CharFilter(field_name="environment__slug", help_text="Environment slug.")
    deployer = django_filters.CharFilter(field_name="deployer__username", help_text="Deployer's username.")
    state = django_filters.ChoiceFilter(choices=Deployment.State.choices)

    class Meta:
        model = Deployment
        fields = ["change_request", "environment", "deployer", "state"]
