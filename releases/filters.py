"""The portal's list of changes (issue 18): search and filters with django-filter, over the changes
the user may see (the queryset it is given is already ``selectors.change_requests_visible_to``)."""
import django_filters
from django.db.models import Q

from governance.models import Environment, Team
from releases.models import ChangeRequest


def _search(queryset, name, value):
    """A title containing the text, or the change's number ("42", "CR-42")."""
    text = (value or "").strip()
    if not text:
        return queryset
    number = text.upper().removeprefix("CR-").strip()
    match = Q(title__icontains=text)
    if number.isdigit() and len(number) < 10:
        match |= Q(pk=int(number))
    return queryset.filter(match)


class ChangeRequestListFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method=_search, label="Search", max_length=200,
                                  help_text="Words of the title, or the number (CR-42).")
    state = django_filters.ChoiceFilter(choices=ChangeRequest.State.choices, empty_label="Any state")
    environment = django_filters.ModelChoiceFilter(
        queryset=Environment.objects.order_by("order", "name"), to_field_name="slug", empty_label="Any environment")
    team = django_filters.ModelChoiceFilter(queryset=Team.objects.order_by("name"), to_field_name="slug",
                                            empty_label="Any team")

    class Meta:
        model = ChangeRequest
        fields = ["q", "state", "environment", "team"]

