"""The audit core: an append-only, hash-chained log of business events.

``audit.record(...)`` is the one way to write an event; it imports no other app of the project.
"""


def record(*args, **kwargs):
    from audit.chain import record as _record

    return _record(*args, **kwargs)


def deferred():
    """``with audit.deferred():`` (or ``@audit.deferred()``): a transaction whose events are chained
    at its end, holding the chain lock only for the append (``audit.chain.deferred``)."""
    from audit.chain import deferred as _deferred

    return _deferred()
