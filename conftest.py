"""Suite-wide setup that must run before the test database exists."""


def pytest_configure(config):
    from django.conf import settings

    # Let the test runner empty the audit table between transactional tests (see audit/db.py).
    settings.COUNTERSIGN_AUDIT_PURGE_ALLOWED = True
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # API throttles count per user in the process-wide cache, across tests: off for the suite;
    # tests/security/test_throttle.py turns them on with rates of its own.
    settings.COUNTERSIGN_THROTTLE_RATES = {"user": None, "anon": None}

    # The test process runs tasks in-process even when a broker is configured, so unit tests see
    # their side effects at once; tests/integration drives a real worker through the broker.
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
