"""Leavers lose everything at once (issue 17, item 4): every grant, key, session, pending change
and approval ends in the same transaction as the deactivation, each with its own event, and the
person's open review items go to their manager."""
import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse

from audit.models import AuditEvent
from governance.models import AccessReviewItem, ApiToken, RoleAssignment
from identity.services.leavers import person_deactivate
from releases.models import Approval, ChangeRequest
from tests.identity.conftest import api_with
from tests.releases.stories import pending_in_production

pytestmark = pytest.mark.django_db


def events(action, since, **data):
    found = AuditEvent.objects.filter(action=action, created_at__gte=since)
    return [e for e in found if all(e.data.get(k) == v for k, v in data.items())]


def assert_everything_ended(leaver):
    since = leaver.since
    for grant in leaver.grants:
        grant.refresh_from_db()
        assert grant.status == RoleAssignment.Status.REVOKED, grant
        assert len(events("role.revoked", since, assignment=grant.pk)) == 1
    tokens = ApiToken.objects.filter(user=leaver.user)
    assert tokens.count() == 2 and all(t.revoked_at is not None for t in tokens)
    assert len(events("api_token.revoked", since, user="dev")) == 2
    assert leaver.change in leaver.open_changes
    for change in leaver.open_changes:
        change.refresh_from_db()
        assert change.state == ChangeRequest.State.CANCELLED
        assert len(events("change_request.withdrawn", since, change_request=change.pk)) == 1
    for item in leaver.items:
        item.refresh_from_db()
        assert item.reviewer.username == "mgr"
    assert len(events("access_review.item_reassigned", since, to="mgr", **{"from": "dev"})) == 2
    assert not [s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(leaver.user.pk)]
    assert len(events("session.ended", since, user="dev")) == 1
    assert len(events("account.deactivated", since, user="dev")) == 1
    for key in leaver.keys:
        assert api_with(key).get("/api/v1/change-requests/").status_code == 401
    assert leaver.browser.get("/").status_code == 302  # back to the login page


def test_a_leaver_loses_everything_in_one_call(leaver):
    summary = person_deactivate(user=leaver.user, source="scim")

    assert summary == {"grants": 3, "api_tokens": 2, "sessions": 1, "change_requests": len(leaver.open_changes), "approvals": 0,
                       "review_items": 2}
    assert_everything_ended(leaver)


def test_deactivating_in_the_admin_is_a_leaver_too(leaver, demo, client_as):
    """The account control (auth.user) disabling the account ends the rest in the same change."""
    client_as(demo.admin).post(reverse("admin:auth_user_changelist"),
                               {"action": "deactivate_selected", "_selected_action": [leaver.user.pk], "index": 0})

    leaver.user.refresh_from_db()
    assert not leaver.user.is_active
    assert events("account.deactivated", leaver.since, source="admin")
    assert_everything_ended(leaver)


def test_a_leavers_approvals_on_pending_changes_stop_counting(demo):
    from django.utils import timezone
    from releases import services as releases

    now = timezone.now()
    change = pending_in_production(demo, now)
    releases.change_request_approve(actor=demo.rev, change_request=change, via=Approval.Via.PORTAL, at=now)
    change.refresh_from_db()
    assert change.state == ChangeRequest.State.PENDING  # production wants two

    person_deactivate(user=demo.rev, source="scim")

    approval = Approval.objects.get(change_request=change, reviewer=demo.rev)
    assert approval.stale
    assert len(events("change_request.approval_withdrawn", now, reviewer="rev")) == 1


def test_pending_grant_requests_of_and_by_the_leaver_are_withdrawn(demo):
    from datetime import timedelta

    from django.utils import timezone
    from governance import services

    now = timezone.now()
    request = services.role_grant(actor=demo.mgr, user=demo.dev2, role=demo.roles["compliance"], team=demo.payments,
                                  justification="audit season", expires_at=now + timedelta(days=7), at=now)
    assert request.status == RoleAssignment.Status.PENDING

    person_deactivate(user=demo.mgr, source="scim")

    request.refresh_from_db()
    assert request.status == RoleAssignment.Status.REJECTED
    assert len(events("role.grant_withdrawn", now, assignment=request.pk)) == 1


def test_deactivating_twice_ends_nothing_twice(leaver):
    person_deactivate(user=leaver.user, source="scim")
    again = person_deactivate(user=leaver.user, source="scim")

    assert again == {"grants": 0, "api_tokens": 0, "sessions": 0, "change_requests": 0, "approvals": 0,
                     "review_items": 0}
    assert len(events("account.deactivated", leaver.since, user="dev")) == 1


def test_one_transaction_a_failure_half_way_ends_nothing(leaver, monkeypatch):
    from identity.services import leavers

    def broken(**kwargs):
        raise RuntimeError("review items unavailable")

    monkeypatch.setattr(leavers.governance_services, "access_review_items_reassign_for_leaver", broken)
    with pytest.raises(RuntimeError):
        person_deactivate(user=leaver.user, source="scim")

    leaver.user.refresh_from_db()
    assert leaver.user.is_active
    assert all(g.status == RoleAssignment.Status.ACTIVE for g in RoleAssignment.objects.filter(pk__in=[g.pk for g in leaver.grants]))
    assert not ApiToken.objects.filter(user=leaver.user, revoked_at__isnull=False).exists()
    assert AccessReviewItem.objects.filter(reviewer=leaver.user).count() == 2
