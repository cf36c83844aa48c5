"""Access-review stories: the demo's quarterly campaign, its items by grantee, and clients per persona."""
from contextlib import contextmanager

import pytest
from guardian.models import UserObjectPermission

from audit.models import AuditEvent
from governance import services
from governance.models import AccessReviewItem, RoleAssignment

PERIOD = "2026-Q4"


@pytest.fixture
def campaign(demo):
    """The every-team campaign for 2026-Q4: one item per active demo grant."""
    return services.access_review_start(period=PERIOD)


@pytest.fixture
def item_of(campaign):
    """``item_of(demo.dev, "developer", demo.staging)``: the campaign's item about that grant."""

    def find(user, role_slug, environment=None, review=None):
        return AccessReviewItem.objects.select_related("assignment").get(
            review=review or campaign, assignment__user=user, assignment__role__slug=role_slug,
            assignment__environment=environment,
        )

    return find




def _written() -> dict:
    return {
        "decisions": list(AccessReviewItem.objects.order_by("pk").values_list("pk", "decision", "decided_by_id")),
        "grants": list(RoleAssignment.objects.order_by("pk").values_list("pk", "status")),
        "audit events": AuditEvent.objects.count(),
        "guardian rows": UserObjectPermission.objects.count(),
    }


@pytest.fixture
def nothing_written(db):
    """``with nothing_written():`` — no decision, grant, audit event or guardian row changed."""

    @contextmanager
    def guard():
        before = _written()
        yield
        assert _written() == before

    return guard


def codes(response) -> list[str]:
    return [reason["code"] for reason in response.json()["reasons"]]
