"""Error pages of our own (templates/400.html, 403.html, 403_csrf.html, 404.html, 500.html), with or
without DEBUG; the API keeps answering in its JSON shape (API.md).

With DEBUG off Django renders those templates through the handlers in ``config/urls.py``. With
DEBUG on (``make run``'s demo) Django would show its technical pages instead: a 404 listing every
URL pattern, a 500 with the traceback and settings. A newcomer trying the demo should never see
those, so with DEBUG on:

* ``FriendlyErrorsMiddleware`` answers a path no route matches, and an ``Http404`` raised by a view,
  with the same handler as production; an API request's unexpected exception answers
  ``{"detail": …}`` with 500 (and is logged with its traceback, as Django would);
* ``PortalExceptionReporter`` (``DEFAULT_EXCEPTION_REPORTER``) catches the rest, errors raised
  outside a view included: Django still logs the traceback to the console, but the page it sends
  is 500.html (400.html for a bad request).

A developer who wants Django's technical pages back sets ``COUNTERSIGN_TECHNICAL_ERROR_PAGES=1``.
``tests/portal/test_error_pages.py`` checks that the demo's settings never serve them.
"""
import logging

from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.template import loader
from django.urls import Resolver404, get_resolver
from django.views import debug, defaults

log = logging.getLogger("django.request")
API_PREFIXES = ("/api/", "/scim/")
SERVER_ERROR = "A server error occurred. Nothing was changed; try again shortly."


def is_api_request(request) -> bool:
    return request.path.startswith(API_PREFIXES)


def bad_request(request, exception=None):
    """``handler400``."""
    if is_api_request(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    """``handler403``: the API's shape has a reason code (API.md)."""
    if is_api_request(request):
        detail = str(exception) or "You do not have permission to perform this action."
        return JsonResponse({"detail": detail, "reasons": [{"code": "missing_duty", "message": detail}]}, status=403)
    return defaults.permission_denied(request, exception)


def server_error_json(request):
    return JsonResponse({"detail": SERVER_ERROR}, status=500)


def _technical_pages_wanted() -> bool:
    return not settings.DEBUG or settings.COUNTERSIGN_TECHNICAL_ERROR_PAGES


def _not_found(request, exception):
    """The project's ``handler404`` (``core.api.not_found``: the API's shape under /api/)."""
    return get_resolver(getattr(request, "urlconf", None)).resolve_error_handler(404)(request, exception)


class FriendlyErrorsMiddleware:
    """With DEBUG on, 404s and view errors get the pages production shows (see the module's doc)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not _technical_pages_wanted():
            try:
                get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
            except Resolver404 as exc:
                response = _not_found(request, exc)
                log.warning("Not Found: %s", request.path)
                return response
        return self.get_response(request)

    def process_exception(self, request, exception):
        if _technical_pages_wanted():
            return None
        if isinstance(exception, Http404):
            return _not_found(request, exception)
        if is_api_request(request) and not isinstance(exception, (SuspiciousOperation, BadRequest)):
            log.error("Internal Server Error: %s", request.path, exc_info=exception)
            return server_error_json(request)
        return None  # Django's own handling, then PortalExceptionReporter's page


class PortalExceptionReporter(debug.ExceptionReporter):
    """What Django's technical 500 page shows with DEBUG on: our 500.html (400.html for a bad
    request) unless technical pages are wanted. Only the page changes: the traceback still goes to
    the log, and ``get_traceback_data`` (error e-mails) is Django's."""

    def get_traceback_html(self):
        if _technical_pages_wanted():
            return super().get_traceback_html()
        bad = isinstance(self.exc_value, (SuspiciousOperation, BadRequest))
        return loader.get_template("400.html" if bad else "500.html").render()

    def get_traceback_text(self):
        if _technical_pages_wanted():
            return super().get_traceback_text()
        return SERVER_ERROR
