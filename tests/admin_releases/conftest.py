"""Fixtures for the releases admin stories: a logged-in client per persona and a guard that proves a
refused form or action wrote nothing."""
from contextlib import contextmanager

import pytest
from django.test import Client

from audit.models import AuditEvent
from releases.models import ApprovalPolicy, ChangeRequest, Deployment, FreezeWindow


@pytest.fixture
def signed_in():
    """``signed_in(demo.sec)`` is a test client logged in as that persona."""

    def login(user):
        client = Client()
        client.force_login(user)
        return client

    return login


def _written_state():
    return {
        "policies": list(ApprovalPolicy.objects.order_by("pk").values()),
        "policy history": ApprovalPolicy.history.count(),
        "freeze windows": list(FreezeWindow.objects.order_by("pk").values_list("pk", "name", "starts_at", "ends_at")),
        "freeze window environments": list(FreezeWindow.environments.through.objects.values_list("pk", flat=True)),
        "freeze window history": FreezeWindow.history.count(),
        "change requests": list(ChangeRequest.objects.order_by("pk").values_list("pk", "state", "close_reason")),
        "change request history": ChangeRequest.history.count(),
        "deployments": list(Deployment.objects.order_by("pk").values_list("pk", "state")),
        "audit events": AuditEvent.objects.count(),
    }


@pytest.fixture
def nothing_written(db):
    """``with nothing_written(): ...`` fails if the block changed a policy, freeze window, change
    request or deployment, or recorded an audit event."""

    @contextmanager
    def guard():
        before = _written_state()
        yield
        assert _written_state() == before

    return guard
