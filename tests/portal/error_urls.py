"""The project's URLs plus views that fail on purpose, for tests/portal/test_error_pages.py."""
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.urls import path

from config import urls


def boom(request):
    raise RuntimeError("a bug in a view")


def suspicious(request):
    raise SuspiciousOperation("a malformed request")


def forbidden(request):
    raise PermissionDenied("not your duty")


handler400, handler403, handler404, handler500 = urls.handler400, urls.handler403, urls.handler404, urls.handler500
urlpatterns = [
    path("boom/", boom),
    path("suspicious/", suspicious),
    path("forbidden/", forbidden),
    path("api/v1/boom/", boom),
    *urls.urlpatterns,
]


class ExplodingMiddleware:
    """Fails outside any view when asked (X-Explode), as a broken middleware would."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.headers.get("X-Explode"):
            raise RuntimeError("a bug in a middleware")
        return self.get_response(request)
