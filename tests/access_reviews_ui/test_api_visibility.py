"""Who sees which campaigns and items over the API: payments' manager its team's items, security and
audit viewers everything, everyone else nothing (a 404, as for anything they may not see)."""
import pytest
from rest_framework.fields import DateTimeField

from governance import services
from governance.models import AccessReviewItem, RoleAssignment

REVIEWS = "/api/v1/access-reviews/"
ITEMS = "/api/v1/access-review-items/"
SEES_ALL = ["sec", "auditor", "admin"]


def item_ids(body) -> set[int]:
    return {item["id"] for item in body["items"]}


@pytest.mark.parametrize("persona", SEES_ALL)
def test_security_and_audit_viewers_see_every_item(demo, api_as, campaign, persona):
    client = api_as(getattr(demo, persona))

    listed = client.get(REVIEWS).json()
    detail = client.get(f"{REVIEWS}{campaign.pk}/").json()

    assert [review["id"] for review in listed["results"]] == [campaign.pk]
    assert listed["results"][0]["items_count"] == RoleAssignment.objects.in_force().count() == 18
    assert item_ids(detail) == set(AccessReviewItem.objects.values_list("pk", flat=True))


def test_the_payments_manager_sees_payments_items_of_the_every_team_campaign(demo, api_as, campaign, item_of):
    client = api_as(demo.mgr)

    listed = client.get(REVIEWS).json()["results"]
    detail = client.get(f"{REVIEWS}{campaign.pk}/").json()

    payments = set(AccessReviewItem.objects.filter(assignment__team=demo.payments).values_list("pk", flat=True))
    assert listed[0]["items_count"] == len(payments) == 15
    assert listed[0]["team"] is None and listed[0]["status"] == "open"
    assert item_ids(detail) == payments
    assert item_of(demo.idev, "developer", demo.staging).pk not in item_ids(detail)


def test_an_item_reads_as_the_grant_its_reviewer_and_the_recommendations(demo, api_as, campaign, item_of):
    item = item_of(demo.ops, "operations", demo.production)

    body = api_as(demo.mgr).get(f"{ITEMS}{item.pk}/").json()

    assert body["assignment"] == {
        "id": item.assignment_id, "user": "ops", "role": "operations", "team": "payments",
        "environment": "production", "status": "active",
        "expires_at": body["assignment"]["expires_at"],
        # The demo's production release two weeks ago was ops's deployment.
        "last_used_at": DateTimeField().to_representation(RoleAssignment.objects.get(pk=item.assignment_id).last_used_at),
    }
    assert body["assignment"]["last_used_at"] is not None
    assert body["reviewer"] == "mgr" and body["reviewer_is_security"] is False
    assert {"code": "outlier", "message": "No other member of the team holds this role."} in body["recommendations"]
    assert (body["decision"], body["decided_by"], body["decided_at"], body["comment"]) == (None, None, None, "")
    assert body["due_at"] and body["review"] == campaign.pk


@pytest.mark.parametrize("persona", ["dev", "rev", "ops", "idev"])
def test_people_who_review_nothing_see_nothing(demo, api_as, campaign, item_of, persona):
    client = api_as(getattr(demo, persona))
    item = item_of(demo.dev, "developer", demo.staging)

    assert client.get(REVIEWS).json()["results"] == []
    assert client.get(ITEMS).json()["results"] == []
    assert client.get(f"{REVIEWS}{campaign.pk}/").status_code == 404
    assert client.get(f"{ITEMS}{item.pk}/").status_code == 404


def test_a_reviewer_sees_their_own_items_even_without_a_team_duty(demo, api_as, campaign, item_of):
    """A reviewer keeps sight of the items assigned to them, e.g. after their manager grant was revoked."""
    item = item_of(demo.dev, "developer", demo.staging)
    grant = RoleAssignment.objects.get(user=demo.mgr, role__slug="manager")
    services.role_assignment_revoke(actor=demo.sec, assignment=grant, reason="moved team")

    client = api_as(demo.mgr)

    detail = client.get(f"{REVIEWS}{campaign.pk}/").json()
    assert item.pk in item_ids(detail)
    assert item_ids(detail) == set(AccessReviewItem.objects.filter(reviewer=demo.mgr).values_list("pk", flat=True))


def test_a_team_campaign_is_seen_by_that_team_only(demo, api_as):
    identity = services.access_review_start(period="2026-Q4", team=demo.identity)

    assert api_as(demo.mgr).get(f"{REVIEWS}{identity.pk}/").status_code == 404
    assert api_as(demo.sec).get(f"{REVIEWS}{identity.pk}/").status_code == 200


def test_items_filter_by_campaign_decision_team_and_awaiting_me(demo, api_as, campaign, item_of):
    kept = item_of(demo.dev, "developer", demo.staging)
    services.access_review_item_decide(actor=demo.mgr, item=kept, decision="keep")
    client = api_as(demo.sec)

    def ids(**params):
        return {item["id"] for item in client.get(ITEMS, params).json()["results"]}

    assert ids(decision="keep") == {kept.pk}
    assert kept.pk not in ids(decision="undecided")
    assert ids(team="identity") == set(AccessReviewItem.objects.filter(assignment__team=demo.identity)
                                       .values_list("pk", flat=True))
    security_queue = set(AccessReviewItem.objects.filter(reviewer_is_security=True).values_list("pk", flat=True))
    assert ids(awaiting_me="true") == security_queue
    assert ids(review=campaign.pk, user="dev", decision="keep") == {kept.pk}
    assert client.get(ITEMS, {"awaiting_me": "yes"}).status_code == 400
    assert client.get(ITEMS, {"decision": "maybe"}).status_code == 400


@pytest.mark.parametrize("path", [f"{REVIEWS}0/", f"{REVIEWS}99999999999999999999/", f"{ITEMS}abc/", f"{ITEMS}-1/"])
def test_ids_that_cannot_exist_are_404(demo, api_as, path):
    response = api_as(demo.sec).get(path)
    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_nobody_gets_401(demo, campaign):
    from rest_framework.test import APIClient

    client = APIClient()
    assert client.get(REVIEWS).status_code == 401
    assert client.post(f"{ITEMS}1/decide/", {"decision": "keep"}, format="json").status_code == 401
