"""Request context (IP, user agent, request id) that reaches audit events without being passed
through every service call. The middleware sets it; management commands and tasks leave it empty."""
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""


EMPTY = RequestContext()
_current: ContextVar[RequestContext] = ContextVar("countersign_request_context", default=EMPTY)


def current() -> RequestContext:
    return _current.get()


def bind(context: RequestContext):
    return _current.set(context)


def reset(token) -> None:
    _current.reset(token)
