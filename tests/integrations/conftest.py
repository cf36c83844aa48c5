from datetime import datetime, time, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

TUESDAY = 2


@pytest.fixture
def now(demo):
    """Next Tuesday 10:00 in payments' zone, inside every deploy window (as tests/releases)."""
    zone = ZoneInfo(demo.payments.time_zone)
    day = timezone.now().astimezone(zone).date() + timedelta(days=1)
    while day.isoweekday() != TUESDAY:
        day += timedelta(days=1)
    return datetime.combine(day, time(10), tzinfo=zone).astimezone(dt_timezone.utc)


@pytest.fixture
def nothing_written(db):
    """The refused call added no change request, approval, deployment, attestation or audit event."""
    import contextlib

    from audit.models import AuditEvent
    from integrations.models import Attestation
    from releases.models import Approval, ChangeRequest, Deployment

    def state():
        return (list(ChangeRequest.objects.values_list("pk", "state", "revision")), Approval.objects.count(),
                Deployment.objects.count(), Attestation.objects.count(), AuditEvent.objects.count())

    @contextlib.contextmanager
    def guard():
        before = state()
        yield
        assert state() == before

    return guard
