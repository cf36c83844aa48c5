"""Reading the platforms' payloads, which are theirs and may hold anything: an object where one is
expected (else empty), a string cut to the column it goes into (else empty)."""


def obj(value) -> dict:
    return value if isinstance(value, dict) else {}


def text(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""
