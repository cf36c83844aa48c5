"""The database went away: answer 503 with Retry-After, never a 500 with a trace (issue 7, point 4).

While PostgreSQL restarts, every query raises ``django.db.OperationalError`` (cannot connect,
server closed the connection) or ``InterfaceError`` (connection already closed). That is not a
bug in the request but an outage the client should wait out, so:

* ``DatabaseUnavailableMiddleware.process_exception`` turns such an error raised by any view
  (portal, admin, API) into a 503;
* ``server_error`` (``handler500``) does the same for an error raised in another middleware
  (sessions, auth), which Django turns into a 500 before any middleware sees the exception;
* ``core.api.exception_handler`` answers API views in the API's ``{detail}`` shape.

Nothing half-writes: services run in ``transaction.atomic``, which PostgreSQL rolls back when the
connection drops. Recovery needs no restart: ``CONN_HEALTH_CHECKS`` (settings) replaces a dead
persistent connection at the start of the next request.
"""
import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.views import defaults

from config.errors import is_api_request, server_error_json

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
DETAIL = "The database is unavailable for a moment. Nothing was changed; try again shortly."
_PAGE = (
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Service unavailable</title></head>"
    "<body><h1>Service unavailable</h1><p>{detail}</p></body></html>"
)


def is_unavailable(exc: BaseException | None) -> bool:
    """True for errors that mean "the database cannot be reached", not "the query is wrong"."""
    return isinstance(exc, (OperationalError, InterfaceError))


def unavailable_response(request, exc: BaseException | None = None):
    """503 in the caller's shape: ``{detail}`` JSON for the API and health checks, a plain page otherwise
    (no template: rendering one might touch the database again)."""
    log.warning("database unavailable on %s %s: %s", request.method, request.path, exc.__class__.__name__)
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse({"detail": DETAIL}, status=503)
    else:
        response = HttpResponse(_PAGE.format(detail=DETAIL), status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_unavailable(exception):
            return unavailable_response(request, exception)
        return None


def server_error(request, *args, **kwargs):
    """``handler500``: Django calls it inside its ``except`` block, so the exception is at hand."""
    exc = sys.exc_info()[1]
    if is_unavailable(exc):
        return unavailable_response(request, exc)
    if is_api_request(request):
        return server_error_json(request)
    return defaults.server_error(request, *args, **kwargs)  # templates/500.html
