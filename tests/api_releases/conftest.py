import contextlib

import pytest

from audit.models import AuditEvent
from releases.models import Approval, ChangeRequest, Deployment


def _snapshot() -> dict:
    return {
        "audit events": AuditEvent.objects.count(),
        "approvals": Approval.objects.count(),
        "approval history": Approval.history.count(),
        "deployments": dict(Deployment.objects.values_list("pk", "state")),
        "deployment history": Deployment.history.count(),
        "change requests": dict(ChangeRequest.objects.values_list("pk", "state")),
        "revisions": dict(ChangeRequest.objects.values_list("pk", "revision")),
        "change request history": ChangeRequest.history.count(),
    }


@pytest.fixture
def nothing_written():
    """``with nothing_written(): ...`` fails if the block added a change request, an approval, a
    deployment, an audit event or a history row, or moved anything's state."""

    @contextlib.contextmanager
    def guard():
        before = _snapshot()
        yield
        assert _snapshot() == before

    return guard
