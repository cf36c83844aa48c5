"""Alert stories: a few open alerts the detectors would raise, and clients per persona."""
from types import SimpleNamespace

import pytest

from audit.alerts import raise_alert
from audit.models import Alert, AuditEvent


@pytest.fixture
def alerts(demo):
    """A rubber stamp (medium), a permission drift (high) and a resolved dormant grant (low)."""
    rubber, _ = raise_alert("rubber_stamp", subject="rev approved CR-1 after 12 seconds", actor=demo.rev,
                            environment="production", team="payments", dedupe_key="rubber_stamp:1")
    drift, _ = raise_alert("permission_drift", severity="high", subject="dev holds permissions no grant explains",
                           actor=demo.dev, details={"unexplained": ["duty_deploy:3"]}, dedupe_key="drift:dev")
    dormant, _ = raise_alert("dormant_grant", severity="low", subject="Grant #4 unused for 90+ days", team="payments")
    Alert.objects.filter(pk=dormant.pk).update(status="resolved", resolution="expected", resolved_by=demo.sec)
    return SimpleNamespace(rubber=rubber, drift=drift, dormant=dormant)




@pytest.fixture
def nothing_written(db):
    """``with nothing_written():`` — no alert changed and no audit event was added."""
    from contextlib import contextmanager

    @contextmanager
    def guard():
        def state():
            return (list(Alert.objects.order_by("pk").values_list("pk", "status", "resolution", "resolved_by_id")),
                    AuditEvent.objects.count())

        before = state()
        yield
        assert state() == before

    return guard


def codes(response) -> list[str]:
    return [reason["code"] for reason in response.json()["reasons"]]
