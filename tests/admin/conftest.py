"""Fixtures for the admin stories: a browser session per persona, the admin's URLs, form posts
shaped like the admin's own, and a guard proving a refused request wrote nothing."""
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from guardian.models import UserObjectPermission

from audit.models import AuditEvent
from governance.models import Membership, RoleAssignment, SoDException


@pytest.fixture
def as_user(demo):
    """``as_user(demo.mgr)`` returns a test client logged in as that persona."""

    def login(user):
        client = Client()
        client.force_login(user)
        return client

    return login


def admin_url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


@pytest.fixture
def url():
    return admin_url


@pytest.fixture
def grant_form(demo):
    """POST data of the RoleAssignment add form; ``days`` sets the expiry, None leaves it empty."""

    def data(user, role_slug, environment=None, *, team=None, days=None, justification="Covers the quarter"):
        expires_at = timezone.now() + timedelta(days=days) if days is not None else None
        return {
            "user": user.pk,
            "role": demo.roles[role_slug].pk,
            "team": (team or demo.payments).pk,
            "environment": environment.pk if environment is not None else "",
            "justification": justification,
            "expires_at_0": expires_at.strftime("%Y-%m-%d") if expires_at else "",
            "expires_at_1": expires_at.strftime("%H:%M:%S") if expires_at else "",
            "_save": "Save",
        }

    return data


@pytest.fixture
def run_action(url):
    """Run a changelist action on some objects; returns the followed response."""

    def post(client, model: str, action: str, objects, *, reason: str = ""):
        return client.post(
            url(f"{model}_changelist"),
            {"action": action, "_selected_action": [obj.pk for obj in objects], "index": 0, "reason": reason},
            follow=True,
        )

    return post


def _written_state():
    return {
        "assignments": list(RoleAssignment.objects.order_by("pk").values_list("pk", "status", "approved_by_id")),
        "exceptions": list(SoDException.objects.order_by("pk").values_list("pk", "status")),
        "memberships": list(Membership.objects.order_by("pk").values_list("pk", "is_manager")),
        "audit_events": AuditEvent.objects.count(),
        "object_permissions": UserObjectPermission.objects.count(),
    }


@pytest.fixture
def nothing_written(db):
    """``with nothing_written():`` — the block changed no assignment, exception, membership,
    audit event or guardian row."""

    @contextmanager
    def guard():
        before = _written_state()
        yield
        assert _written_state() == before

    return guard
