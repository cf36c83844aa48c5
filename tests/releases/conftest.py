"""Fixtures for the release stories: a fixed present, and a guard that proves a refused call wrote
nothing."""
import contextlib
from datetime import datetime, time, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from releases.models import Approval, ChangeRequest, Deployment

TUESDAY = 2


@pytest.fixture
def now(demo):
    """The story's present: next Tuesday at 10:00 in London, inside payments' working hours, so
    no off-hours alert (RULES.md E2) joins the events a story counts; Tuesday + 72 h is still a
    weekday. Grants of the demo and the factories run for 30 days or more from today. Services get
    ``at=`` explicitly, so later moments are ``now + timedelta(...)``, never a sleep."""
    team_zone = ZoneInfo(demo.payments.time_zone)
    day = timezone.now().astimezone(team_zone).date() + timedelta(days=1)
    while day.isoweekday() != TUESDAY:
        day += timedelta(days=1)
    return datetime.combine(day, time(10), tzinfo=team_zone).astimezone(dt_timezone.utc)


def _written_state() -> dict:
    return {
        "change requests": list(
            ChangeRequest.objects.order_by("pk").values_list("pk", "state", "revision", "artifact")
        ),
        "approvals": list(Approval.objects.order_by("pk").values_list("pk", "stale")),
        "deployments": list(Deployment.objects.order_by("pk").values_list("pk", "state")),
        "audit events": AuditEvent.objects.count(),
        "change request history": ChangeRequest.history.count(),
    }


@pytest.fixture
def nothing_written(db):
    """``with nothing_written(), pytest.raises(Denied):`` — the refused call added no change
    request, approval, deployment or audit event, and moved none of them to another state."""

    @contextlib.contextmanager
    def guard():
        before = _written_state()
        yield
        assert _written_state() == before

    return guard
