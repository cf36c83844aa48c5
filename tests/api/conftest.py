import contextlib

import pytest
from guardian.models import UserObjectPermission

from audit.models import AuditEvent
from governance.models import ApiToken, RoleAssignment, SoDException


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The demo's ten personas get passwords; the default hasher would spend most of each test on them."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _row_counts() -> dict[str, int]:
    return {
        "role assignments": RoleAssignment.objects.count(),
        "role assignment history": RoleAssignment.history.count(),
        "audit events": AuditEvent.objects.count(),
        "guardian permissions": UserObjectPermission.objects.count(),
        "SoD exceptions": SoDException.objects.count(),
        "API tokens": ApiToken.objects.count(),
    }


@pytest.fixture
def nothing_written():
    """``with nothing_written(): ...`` fails if the block added, removed or re-stated governed rows."""

    @contextlib.contextmanager
    def guard():
        before = _row_counts()
        statuses = dict(RoleAssignment.objects.values_list("pk", "status"))
        yield
        assert _row_counts() == before
        assert dict(RoleAssignment.objects.values_list("pk", "status")) == statuses

    return guard
