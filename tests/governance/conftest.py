"""Fixtures for the governance service stories: the demo organisation, a fixed clock, a grant
helper, and a guard that proves a refused call wrote nothing."""
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from guardian.models import UserObjectPermission

from audit.models import AuditEvent
from governance import services
from governance.models import RoleAssignment, SoDException


@pytest.fixture
def now(demo):
    """The story's present: just after the demo was seeded (its privileged grants last 90 days)."""
    return timezone.now()


@pytest.fixture
def grant(demo, now):
    """``grant(actor, user, "operations", demo.production, days=30)`` requests a grant through
    ``services.role_grant``; ``team`` defaults to payments, ``days`` sets the expiry from ``at``."""

    def request(actor, user, role_slug, environment=None, *, team=None, days=None, at=None, **overrides):
        at = at or now
        arguments = {
            "actor": actor,
            "user": user,
            "role": demo.roles[role_slug],
            "team": team or demo.payments,
            "environment": environment,
            "justification": f"{user.username} covers {role_slug} this quarter",
            "expires_at": at + timedelta(days=days) if days is not None else None,
            "at": at,
        }
        arguments.update(overrides)
        return services.role_grant(**arguments)

    return request


def _written_state():
    return {
        "assignments": list(RoleAssignment.objects.order_by("pk").values_list("pk", "status", "approved_by_id")),
        "exceptions": list(SoDException.objects.order_by("pk").values_list("pk", "status")),
        "audit_events": AuditEvent.objects.count(),
        "object_permissions": UserObjectPermission.objects.count(),
    }


@pytest.fixture
def nothing_written(db):
    """``with nothing_written(), pytest.raises(Denied):`` — the refused call changed no assignment,
    exception, audit event or guardian row."""

    @contextmanager
    def guard():
        before = _written_state()
        yield
        assert _written_state() == before

    return guard


@pytest.fixture
def refetch():
    """A fresh user row: Django caches permissions on the instance, a re-fetched user reads them again."""

    def load(user):
        return get_user_model().objects.get(pk=user.pk)

    return load
