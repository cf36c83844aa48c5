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

    _scan_static_files_once()


def _scan_static_files_once():
    """Django's test client builds the middleware chain once per ``Client``, and WhiteNoise's
    middleware walks ``STATIC_ROOT`` (some 500 files) in its ``__init__``: 47 ms per client, half of
    an authorisation-matrix cell and of many tests. Served processes build it once (gunicorn:
    once per worker), so only the suite pays it. What a scan finds depends on the directory, the
    prefix and the WhiteNoise settings, and nothing writes static files during a run (``make test``
    collects them first), so the suite keeps each scan by those and reuses it;
    tests/architecture/test_static_scan.py holds a reused scan to a fresh one."""
    from django.conf import settings
    from whitenoise.base import WhiteNoise

    scan = WhiteNoise.update_files_dictionary
    scans: dict = {}

    def update_files_dictionary(self, root, prefix):
        options = sorted((name, repr(getattr(settings, name))) for name in dir(settings) if name.startswith("WHITENOISE_"))
        key = (type(self), root, prefix, settings.DEBUG, tuple(options))
        if key not in scans:
            found, self.files = self.files, {}
            try:
                scan(self, root, prefix)
                scans[key] = self.files
            finally:
                self.files = found
        self.files.update(scans[key])

    update_files_dictionary.uncached = scan
    WhiteNoise.update_files_dictionary = update_files_dictionary
