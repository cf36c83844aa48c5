"""The API's one base viewset (API.md): fetch one object by id from what the caller may see (404
otherwise), authorise through hooks (403 with reasons). Apart from ``core.api`` because DRF's
generic views read the default paginator, ``core.api.Pagination``, while they are imported."""
from rest_framework import viewsets
from rest_framework.generics import get_object_or_404

from core.api import object_pk


class VisibleObjectViewSet(viewsets.GenericViewSet):
    """The API's one fetch-and-authorise (API.md: 404 for what the caller may not see, 403 with
    reason codes for what they may not do).

    - ``get_queryset`` is what the caller may see; ``get_object`` fetches one object from it by id,
      or 404 (a forbidden object looks like a missing one, V1–V3). Query-string filters meant for
      the list do not apply, and an id that cannot exist never reaches the database.
    - ``authorise(request)`` runs before any handler, once the caller is authenticated: an endpoint
      that refuses a whole action with a reason (a list or a create without the duty) raises
      ``PermissionDenied`` there, before the body is read.
    - ``authorise_object(request, obj)`` runs on the fetched object: a visible object the caller
      may not act on this way is a 403. The services decide everything else and refuse with their
      own reasons."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.authorise(request)

    def authorise(self, request) -> None:
        """Refuse the whole action (403); by default every signed-in caller may ask."""

    def authorise_object(self, request, obj) -> None:
        """Refuse this action on a visible object (403); by default the service decides."""

    def get_object(self):
        obj = get_object_or_404(self.get_queryset(), pk=object_pk(self.kwargs[self.lookup_url_kwarg or self.lookup_field]))
        self.check_object_permissions(self.request, obj)
        self.authorise_object(self.request, obj)
        return obj
