"""How the in-process benchmarks run (``python bench/<name>.py``, called by bench/run.py): in a
throwaway test database on DATABASE_URL's server (else SQLite), made and dropped around the
measurement, which is printed as one JSON line for bench/run.py to read."""
import json


def measure_in_throwaway_database(run, *, purge_allowed: bool = False) -> None:
    """``run()`` in a fresh test database; ``purge_allowed``: the benchmark empties the audit trail
    of that database (allowed in this process only, set before connecting)."""
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if purge_allowed:
        settings.COUNTERSIGN_AUDIT_PURGE_ALLOWED = True
    old = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        measured = run()
    finally:
        connection.creation.destroy_test_db(old, verbosity=0)
    print(json.dumps(measured))
