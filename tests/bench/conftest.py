import pytest
from django.db import connection, transaction

from bench.seed import seed

# A scale small enough to seed twice in one test, with every kind of row the larger ones have.
TINY = {
    "users": 30, "teams": 3, "environments": 3, "role_assignments": 200, "change_requests": 300,
    "deployments": 200, "approvals": 600, "audit_events": 3_000, "queue_pending": 20, "queue_approved": 5,
}


@pytest.fixture(scope="module")
def seeded_small(django_db_setup, django_db_blocker):
    """``small`` seeded once per module, inside a transaction rolled back after it (seeding takes
    seconds); each test still runs in its own savepoint nested inside."""
    with django_db_blocker.unblock():
        name = str(connection.settings_dict["NAME"])
        assert name.startswith("test_") or "memorydb" in name, f"refusing to seed {name}: not a test database"
        outer = transaction.atomic()
        outer.__enter__()
        try:
            counts = seed("small")
        except BaseException as exc:
            outer.__exit__(type(exc), exc, exc.__traceback__)
            raise
    yield counts
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)
