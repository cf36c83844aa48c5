"""Deciding an item over the API (A3): keep, or revoke with a comment, which ends the grant at once
through the grant service; refusals carry their codes and write nothing."""
import pytest
from guardian.shortcuts import get_perms

from audit.models import AuditEvent
from governance import services
from governance.models import AccessReview, AccessReviewItem, RoleAssignment
from tests.access_reviews_ui.conftest import codes


def decide_url(item) -> str:
    return f"/api/v1/access-review-items/{item.pk}/decide/"


def test_the_manager_keeps_a_grant(demo, api_as, item_of):
    item = item_of(demo.dev, "developer", demo.staging)

    response = api_as(demo.mgr).post(decide_url(item), {"decision": "keep", "comment": "Still on the team."},
                                     format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["decision"], body["decided_by"], body["comment"]) == ("keep", "mgr", "Still on the team.")
    assert RoleAssignment.objects.get(pk=item.assignment_id).status == "active"
    event = AuditEvent.objects.get(action="access_review.item_decided", target_id=str(item.pk))
    assert event.actor_username == "mgr" and event.data["decision"] == "keep"


def test_revoking_ends_the_grant_and_its_permissions_at_once(demo, api_as, item_of):
    item = item_of(demo.ops, "operations", demo.production)
    assert "duty_deploy" in get_perms(demo.ops, demo.production)

    response = api_as(demo.mgr).post(decide_url(item), {"decision": "revoke", "comment": "Moved to SRE."},
                                     format="json")

    assert response.status_code == 200
    assert response.json()["decision"] == "revoke"
    assert response.json()["assignment"]["status"] == "revoked"
    grant = RoleAssignment.objects.get(pk=item.assignment_id)
    assert (grant.status, grant.ended_by, grant.end_reason) == ("revoked", demo.mgr, "access review: Moved to SRE.")
    assert "duty_deploy" not in get_perms(type(demo.ops).objects.get(pk=demo.ops.pk), demo.production)
    actions = list(AuditEvent.objects.filter(actor=demo.mgr).order_by("sequence").values_list("action", flat=True))
    assert actions[-2:] == ["access_review.item_decided", "role.revoked"]


def test_security_decides_items_no_manager_could_review(demo, api_as, item_of):
    item = item_of(demo.idev, "developer", demo.production)
    assert item.reviewer_is_security

    response = api_as(demo.sec).post(decide_url(item), {"decision": "keep"}, format="json")

    assert response.status_code == 200 and response.json()["decided_by"] == "sec"


def test_nobody_reviews_their_own_access(demo, api_as, item_of, nothing_written):
    own = item_of(demo.mgr, "manager")
    client = api_as(demo.mgr)

    with nothing_written():
        response = client.post(decide_url(own), {"decision": "keep"}, format="json")

    assert response.status_code == 403
    assert codes(response) == ["self_review"]


def test_an_audit_viewer_sees_items_but_may_not_decide(demo, api_as, item_of, nothing_written):
    item = item_of(demo.dev, "developer", demo.staging)
    client = api_as(demo.auditor)

    with nothing_written():
        response = client.post(decide_url(item), {"decision": "keep"}, format="json")

    assert response.status_code == 403
    assert codes(response) == ["missing_duty"]


def test_an_item_the_caller_cannot_see_is_404(demo, api_as, item_of, nothing_written):
    item = item_of(demo.dev2, "developer", demo.staging)
    client = api_as(demo.dev)

    with nothing_written():
        response = client.post(decide_url(item), {"decision": "revoke", "comment": "x"}, format="json")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_deciding_twice_is_a_conflict(demo, api_as, item_of, nothing_written):
    item = item_of(demo.dev, "developer", demo.staging)
    client = api_as(demo.mgr)
    assert client.post(decide_url(item), {"decision": "keep"}, format="json").status_code == 200

    with nothing_written():
        again = client.post(decide_url(item), {"decision": "revoke", "comment": "Changed my mind."}, format="json")

    assert again.status_code == 409
    assert codes(again) == ["invalid_state"]


def test_a_closed_campaign_takes_no_decisions(demo, api_as, campaign, item_of, nothing_written):
    item = item_of(demo.dev, "developer", demo.staging)
    # Escalate, not revoke: closing must not also take away mgr's own (undecided) manager grant.
    AccessReview.objects.filter(pk=campaign.pk).update(undecided_policy="escalate")
    services.access_review_close(review=campaign)
    client = api_as(demo.mgr)

    with nothing_written():
        response = client.post(decide_url(item), {"decision": "keep"}, format="json")

    assert response.status_code == 409 and codes(response) == ["invalid_state"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"decision": "maybe"}, "decision"),
        ({}, "decision"),
        ({"decision": ["keep"]}, "decision"),
        ({"decision": "revoke"}, "comment"),
        ({"decision": "revoke", "comment": "   "}, "comment"),
        ({"decision": "keep", "comment": "x" * 4001}, "comment"),
    ],
)
def test_bad_input_is_400_and_writes_nothing(demo, api_as, item_of, nothing_written, body, field):
    item = item_of(demo.dev, "developer", demo.staging)
    client = api_as(demo.mgr)

    with nothing_written():
        response = client.post(decide_url(item), body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert AccessReviewItem.objects.get(pk=item.pk).decision == ""


# Keeping dev's staging grant: its reviewer (payments' manager) may; security and audit viewers see the
# item but are refused (it is not assigned to security); everyone else, the grantee included, sees nothing.
DECIDE = {"mgr": 200, "sec": 403, "auditor": 403, "admin": 403,
          "dev": 404, "dev2": 404, "rev": 404, "rev2": 404, "ops": 404, "idev": 404}


@pytest.mark.parametrize("persona", sorted(DECIDE))
def test_every_persona_deciding_one_item(demo, api_as, item_of, persona):
    item = item_of(demo.dev, "developer", demo.staging)

    response = api_as(getattr(demo, persona)).post(decide_url(item), {"decision": "keep"}, format="json")

    assert response.status_code == DECIDE[persona]
    if response.status_code == 403:
        assert codes(response) == ["missing_duty"]
