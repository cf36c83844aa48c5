"""Per-request memoisation: pages ask the same permission and visibility questions many times while
rendering, and each answer costs a query. One helper, used by the admin, the portal and the API."""


def per_request(request, name: str, compute):
    """``compute()`` once per request and ``name``; later calls return the first answer."""
    attribute = f"_countersign_{name}"
    if not hasattr(request, attribute):
        setattr(request, attribute, compute())
    return getattr(request, attribute)
