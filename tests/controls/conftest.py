"""Fixtures for the control-plane stories (RULES.md section 8): a clock, a second security officer,
and a guard proving that a refused or held change wrote no control row and no event."""
from contextlib import contextmanager

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from governance.controls import registry
from governance.models import ControlChange
from tests.factories import UserFactory, bootstrap_grant


@pytest.fixture
def now(demo):
    return timezone.now()


def control_rows() -> dict:
    """Every control row as its kind reads it: what a change must not touch when it is refused."""
    return {
        kind.key: sorted((obj.pk, repr(sorted(kind.snapshot(obj).items())))
                         for obj in kind.model._default_manager.all())
        for kind in registry.kinds()
    }


@pytest.fixture
def controls_unchanged(db):
    """``with controls_unchanged():`` — no control row changed inside the block."""

    @contextmanager
    def guard():
        before = control_rows()
        yield
        assert control_rows() == before

    return guard


@pytest.fixture
def nothing_written(db):
    """``with nothing_written(), pytest.raises(Denied):`` — no control row, proposal or event."""

    @contextmanager
    def guard():
        before = (control_rows(), ControlChange.objects.count(), AuditEvent.objects.count())
        yield
        assert (control_rows(), ControlChange.objects.count(), AuditEvent.objects.count()) == before

    return guard


@pytest.fixture
def sec2(demo):
    """A second security officer for production only (staff), bootstrapped for the story."""
    user = UserFactory(username="sec2", is_staff=True)
    bootstrap_grant(user, "security", demo.payments, demo.production)
    return user


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("sequence")
