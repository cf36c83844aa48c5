"""Per-request memoisation: pages ask the same permission and visibility questions many times while
rendering, and each answer costs a query. One helper, used by the admin, the portal and the API."""

_UNSET = object()


def per_request(holder, name: str, compute, *, at=_UNSET):
    """``compute()`` once per ``holder`` and ``name``; later calls return the first answer.

    ``holder`` lives for one request: the request itself, or ``request.user`` where the caller has
    only the user (the selectors). ``at``: the answer holds for that instant only; asked again for
    another instant, it is computed afresh (and kept for the new one)."""
    attribute = f"_countersign_{name}"
    kept = getattr(holder, attribute, None)
    if kept is not None and (at is _UNSET or kept[0] == at):
        return kept[1]
    value = compute()
    setattr(holder, attribute, (at, value))
    return value
