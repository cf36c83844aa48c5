"""Refusals that every service raises and every client (admin, portal, API) renders the same way.

``Denied`` is a policy refusal (HTTP 403) carrying *all* the reasons that apply; ``InvalidState``
is a transition the object's state does not allow (HTTP 409). Bad input is Django's
``ValidationError`` with a field dict (HTTP 400).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class Refused(Exception):
    status_code = 403
    detail = "Not allowed."

    def __init__(self, reasons: list[Reason] | Reason, detail: str | None = None):
        self.reasons = [reasons] if isinstance(reasons, Reason) else list(reasons)
        if detail:
            self.detail = detail
        super().__init__("; ".join(f"{r.code}: {r.message}" for r in self.reasons))

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def messages(self) -> list[str]:
        return [r.message for r in self.reasons]


class Denied(Refused):
    status_code = 403
    detail = "Not allowed."


class InvalidState(Refused):
    """``code`` names a more precise conflict where one is documented (``revision_changed``: the
    object moved on since the caller read it)."""

    status_code = 409
    detail = "The object's state does not allow this action."

    def __init__(self, message: str, *, code: str = "invalid_state"):
        super().__init__(Reason(code, message))
