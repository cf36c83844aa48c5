"""Access-review reads cost the same number of queries with 18 items as with 58: campaigns, their
items and the portal page, for a manager (team-scoped visibility) and for security (everything)."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance import services
from tests.factories import UserFactory, bootstrap_grant


def queries(client, path) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def grow(demo, count: int, offset: int = 0) -> None:
    for n in range(offset, offset + count):
        bootstrap_grant(UserFactory(username=f"bulk{n}"), "developer", demo.payments, demo.development)


@pytest.mark.parametrize("persona", ["mgr", "sec"])
def test_api_reads_cost_the_same_at_two_sizes(demo, client_as, persona):
    # A session, not a key: a key records its last use once a minute, which would add an UPDATE.
    client = client_as(getattr(demo, persona))
    small_review = services.access_review_start(period="2026-Q3")
    paths = lambda review: [  # noqa: E731
        "/api/v1/access-reviews/", f"/api/v1/access-reviews/{review.pk}/", "/api/v1/access-review-items/",
        "/api/v1/access-review-items/?awaiting_me=true",
    ]
    for path in paths(small_review):
        client.get(path)  # warm per-process caches
    small = [queries(client, path) for path in paths(small_review)]

    grow(demo, 40)
    large_review = services.access_review_start(period="2026-Q4")
    large = [queries(client, path) for path in paths(large_review)]

    assert large_review.items.count() == small_review.items.count() + 40
    assert len(client.get(f"/api/v1/access-reviews/{large_review.pk}/").json()["items"]) > 40
    assert large == small


@pytest.mark.parametrize("persona", ["mgr", "sec"])
def test_the_portal_page_costs_the_same_at_two_sizes(demo, client_as, persona):
    client = client_as(getattr(demo, persona))
    review = services.access_review_start(period="2026-Q3")
    for item in review.items.filter(reviewer=demo.mgr)[:2]:
        services.access_review_item_decide(actor=demo.mgr, item=item, decision="keep")
    client.get("/access-reviews/")
    small = queries(client, "/access-reviews/")

    grow(demo, 20)
    bigger = services.access_review_start(period="2026-Q4")
    for item in bigger.items.filter(reviewer=demo.mgr)[:10]:
        services.access_review_item_decide(actor=demo.mgr, item=item, decision="keep")
    large = queries(client, "/access-reviews/")

    assert large == small
