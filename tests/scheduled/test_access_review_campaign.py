"""A1–A3: campaigns, reviewers, recommendations, decisions, escalation and close."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import Alert, AuditEvent
from governance.access_reviews import campaigns as reviews, services
from core.errors import Denied, InvalidState
from governance.models import AccessReview, AccessReviewItem, RoleAssignment, SoDException
from tests.factories import member


def _item(review, user, role_slug):
    return review.items.select_related("assignment").get(assignment__user=user, assignment__role__slug=role_slug,
                                                         assignment__environment__slug="production") \
        if role_slug in {"developer", "reviewer", "operations"} else \
        review.items.select_related("assignment").get(assignment__user=user, assignment__role__slug=role_slug)


def test_one_item_per_active_grant_reviewed_by_a_manager_not_the_grantee(demo):
    review = services.access_review_start(period="2026-Q4")
    assert review.status == AccessReview.Status.OPEN
    assert review.items.count() == RoleAssignment.objects.in_force().count()
    assert _item(review, demo.dev, "developer").reviewer == demo.mgr
    # mgr's own grant goes to security, never to mgr.
    own = _item(review, demo.mgr, "manager")
    assert own.reviewer == demo.sec and own.reviewer_is_security
    # identity has no manager: security reviews idev.
    assert _item(review, demo.idev, "developer").reviewer == demo.sec
    assert AuditEvent.objects.filter(action="access_review.opened", target_id=str(review.pk)).count() == 1


def test_running_twice_for_a_period_creates_one_campaign(demo):
    first = services.access_review_start(period="2026-Q4")
    second = services.access_review_start(period="2026-Q4")
    assert first.pk == second.pk and AccessReview.objects.count() == 1
    assert AccessReviewItem.objects.count() == RoleAssignment.objects.in_force().count()


def test_a_half_built_campaign_resumes_without_duplicates(demo):
    review = AccessReview.objects.create(period="2026-Q4", name="half", due_at=timezone.now() + timedelta(days=14))
    first = RoleAssignment.objects.in_force().order_by("pk").first()
    AccessReviewItem.objects.create(review=review, assignment=first, due_at=review.due_at)
    resumed = services.access_review_start(period="2026-Q4")
    assert resumed.pk == review.pk and resumed.status == AccessReview.Status.OPEN
    assert resumed.items.count() == RoleAssignment.objects.in_force().count()


def test_a_20000_grant_campaign_costs_queries_per_batch_not_per_grant(demo, monkeypatch):
    from bench import data

    data.grants(20000)
    grants = RoleAssignment.objects.in_force().count()
    assert grants > 20000

    def queries_for(period, batch):
        monkeypatch.setattr(reviews, "BATCH_SIZE", batch)
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as ctx:
            review = services.access_review_start(period=period)
        assert review.items.count() == grants
        return len(ctx.captured_queries)

    batches_of_1000 = -(-grants // 1000)
    small_batches = queries_for("2026-Q1", 1000)
    large_batches = queries_for("2026-Q2", 5000)
    # Per batch: one select, the inserts the backend needs for its rows, a savepoint pair and
    # slack of one. SQLite splits an insert at its 999-parameter limit; PostgreSQL does not.
    columns = len(AccessReviewItem._meta.concrete_fields) - 1
    inserts = -(-1000 // (999 // columns)) if connection.vendor == "sqlite" else 1
    per_batch = 4 + inserts
    assert small_batches <= 40 + batches_of_1000 * per_batch
    assert small_batches < grants / 50
    if connection.vendor != "sqlite":
        assert large_batches < small_batches  # fewer batches, fewer queries


@pytest.mark.parametrize("code", ["unused", "no_expiry", "inactive_user", "sod_exception", "outlier"])
def test_each_recommendation_has_a_case_that_raises_it_and_one_that_does_not(demo, code):
    at = timezone.now()
    later = at + timedelta(days=120)
    if code == "unused":
        demo_grant = RoleAssignment.objects.get(user=demo.dev, role__slug="developer", environment=demo.staging)
        used = RoleAssignment.objects.get(user=demo.dev2, role__slug="developer", environment=demo.staging)
        RoleAssignment.objects.filter(pk=used.pk).update(last_used_at=later - timedelta(days=1))
        review = services.access_review_start(period="p", at=later)
        flagged, clean = demo_grant, used
    elif code == "no_expiry":
        flagged = RoleAssignment.objects.get(user=demo.rev, environment=demo.production)
        RoleAssignment.objects.filter(pk=flagged.pk).update(expires_at=None)
        clean = RoleAssignment.objects.get(user=demo.rev2, environment=demo.production)
        review = services.access_review_start(period="p", at=at)
    elif code == "inactive_user":
        type(demo.dev).objects.filter(pk=demo.dev.pk).update(last_login=at - timedelta(days=200),
                                                               date_joined=at - timedelta(days=300))
        type(demo.dev).objects.filter(pk=demo.dev2.pk).update(last_login=at - timedelta(days=1))
        review = services.access_review_start(period="p", at=at)
        flagged = RoleAssignment.objects.get(user=demo.dev, environment=demo.staging)
        clean = RoleAssignment.objects.get(user=demo.dev2, environment=demo.staging)
    elif code == "sod_exception":
        exception = SoDException.objects.create(
            user=demo.dev, duty_a="submit", duty_b="deploy", environment=demo.production, justification="j",
            expires_at=at + timedelta(days=5), requested_by=demo.mgr, status="active", approved_by=demo.sec)
        flagged = RoleAssignment.objects.get(user=demo.dev, environment=demo.production)
        RoleAssignment.objects.filter(pk=flagged.pk).update(sod_exception=exception)
        clean = RoleAssignment.objects.get(user=demo.dev2, environment=demo.production)
        review = services.access_review_start(period="p", at=at)
    else:  # outlier: ops is the only operations holder in payments; dev shares developer with dev2
        review = services.access_review_start(period="p", at=at)
        flagged = RoleAssignment.objects.get(user=demo.ops, environment=demo.staging)
        clean = RoleAssignment.objects.get(user=demo.dev, environment=demo.staging)
    codes = lambda a: {r["code"] for r in review.items.get(assignment=a).recommendations}  # noqa: E731
    assert code in codes(flagged)
    assert code not in codes(clean)


def test_decide_keep_and_revoke(demo):
    review = services.access_review_start(period="2026-Q4")
    keep = _item(review, demo.dev, "developer")
    services.access_review_item_decide(actor=demo.mgr, item=keep, decision="keep")
    revoke = _item(review, demo.ops, "operations")
    services.access_review_item_decide(actor=demo.mgr, item=revoke, decision="revoke", comment="moved to SRE")
    assert RoleAssignment.objects.get(pk=revoke.assignment_id).status == "revoked"
    assert not demo.ops.__class__.objects.get(pk=demo.ops.pk).has_perm("governance.duty_deploy", demo.production)
    with pytest.raises(InvalidState):
        services.access_review_item_decide(actor=demo.mgr, item=keep, decision="revoke", comment="x")


def test_nobody_reviews_their_own_access_and_outsiders_cannot_decide(demo):
    review = services.access_review_start(period="2026-Q4")
    own = _item(review, demo.mgr, "manager")
    with pytest.raises(Denied) as refused:
        services.access_review_item_decide(actor=demo.mgr, item=own, decision="keep")
    assert refused.value.codes == ["self_review"]
    with pytest.raises(Denied) as refused:
        services.access_review_item_decide(actor=demo.dev2, item=_item(review, demo.dev, "developer"), decision="keep")
    assert refused.value.codes == ["missing_duty"]


def test_overdue_items_are_reminded_then_escalated_once(demo):
    at = timezone.now()
    review = services.access_review_start(period="2026-Q4", at=at)
    assert services.access_reviews_escalate(at=at + timedelta(days=1)) == {"reminded": 0, "escalated": 0}
    due = review.due_at
    first = services.access_reviews_escalate(at=due + timedelta(minutes=1))
    assert first["reminded"] == review.items.count() and first["escalated"] == 0
    assert services.access_reviews_escalate(at=due + timedelta(days=1))["reminded"] == 0
    third = services.access_reviews_escalate(at=due + timedelta(days=4))
    assert third["escalated"] == review.items.count()
    assert services.access_reviews_escalate(at=due + timedelta(days=5)) == {"reminded": 0, "escalated": 0}
    assert AuditEvent.objects.filter(action="access_review.item_escalated").count() == review.items.count()


def test_close_revokes_undecided_never_silently_keeps(demo):
    review = services.access_review_start(period="2026-Q4")
    kept = _item(review, demo.dev, "developer")
    services.access_review_item_decide(actor=demo.mgr, item=kept, decision="keep")
    services.access_review_close(review=review)
    assert RoleAssignment.objects.get(pk=kept.assignment_id).status == "active"
    undecided = review.items.exclude(pk=kept.pk)
    assert all(i.assignment.status == "revoked" for i in undecided.select_related("assignment"))


def test_close_with_escalate_policy_keeps_grants_and_raises_an_alert(demo):
    review = services.access_review_start(period="2026-Q4", undecided_policy="escalate")
    services.access_review_close(review=review)
    assert RoleAssignment.objects.filter(status="revoked").count() == 0
    assert Alert.objects.filter(kind="access_review_undecided", status="open").count() == 1


def test_starting_needs_review_access_or_security(demo):
    with pytest.raises(Denied):
        services.access_review_start(actor=demo.dev, period="x", team=demo.payments)
    assert services.access_review_start(actor=demo.mgr, period="x", team=demo.payments).team == demo.payments
    member(demo.idev, demo.payments)
