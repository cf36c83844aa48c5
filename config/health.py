from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from config.db_errors import RETRY_AFTER_SECONDS


def _broker_ok() -> bool:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return True


def _siem_lag() -> list[dict]:
    from compliance.siem import lag

    try:
        return lag.all_sinks()
    except Exception:  # noqa: BLE001 - the health answer never fails on its details
        return []


def healthz(request):
    """200 when the database and, if configured, the broker answer; 503 otherwise."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        checks["database"] = f"error: {exc.__class__.__name__}"
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            _broker_ok()
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"error: {exc.__class__.__name__}"
    healthy = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    if checks["database"] == "ok":
        siem = _siem_lag()
        if siem:
            # How far behind each SIEM sink is (docs/siem.md "Lag"); informative, never unhealthy.
            body["details"] = {"siem": siem}
    response = JsonResponse(body, status=200 if healthy else 503)
    if not healthy:
        # Load balancers and probes: take this instance out for a moment, it recovers by itself
        # (a PostgreSQL restart, a Redis outage; see docs/operations.md).
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
