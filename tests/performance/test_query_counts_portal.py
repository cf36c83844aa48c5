"""Queries per request do not grow with data (issue 21), the portal: every persona's dashboard and
inbox, the inbox's decisions, the access-review page and its bulk decisions, the author's pages
(list, new, edit), a change asking for reviewers, the evidence page, and the admin lists of what
they show, at SMALL and LARGE reviewers, pending changes, grants awaiting a second person, alerts
and access-review items."""
import itertools
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.alerts import raise_alert
from governance import services as governance
from audit.models import Alert
from governance.models import AccessReview, AccessReviewItem, RoleAssignment
from releases import services
from releases.models import ChangeRequest
from tests.factories import UserFactory, bootstrap_grant, member
from tests.performance.counting import assert_same_at_two_sizes

ADMIN_LISTS = ("governance_accessreview", "governance_accessreviewitem", "governance_roleassignment", "audit_alert",
               "audit_outboxmessage")


@pytest.fixture
def portal(demo):
    """``portal.grow(n)``: n more reviewers of payments (each asked to review ``portal.asking``),
    n pending changes, n grants awaiting security, n open alerts and a campaign reviewing every
    grant so far; then two of each decision the posts make, set aside in ``portal.to_decide``."""
    numbers = itertools.count(1)
    asking = pending(demo, "Asks for reviewers")
    to_decide = {"grants": [], "alerts": [], "items": []}

    def grow(n):
        for _ in range(n):
            k = next(numbers)
            reviewer = UserFactory(username=f"reviewer{k}")
            member(reviewer, demo.payments)
            bootstrap_grant(reviewer, "reviewer", demo.payments, demo.staging)
            asking.requested_reviewers.add(reviewer)
            pending(demo, f"Pending change {k}")
            awaiting(demo, reviewer)
            raise_alert("query_count", subject=f"Alert {k}", team=demo.payments.slug)
        governance.access_review_start(actor=demo.mgr, period=f"period {k}", team=demo.payments)
        for _ in range(2):  # the warm-up post and the counted one
            k = next(numbers)
            to_decide["grants"].append(awaiting(demo, UserFactory(username=f"grantee{k}")))
            to_decide["alerts"].append(raise_alert("query_count", subject=f"Alert {k}", team="payments")[0])
        undecided = AccessReviewItem.objects.filter(reviewer=demo.mgr, decided_at__isnull=True).exclude(
            pk__in=[item.pk for pair in to_decide["items"] for item in pair]).order_by("-pk")
        to_decide["items"] += [list(undecided[:2]), list(undecided[2:4])]

    return SimpleNamespace(grow=grow, asking=asking, to_decide=to_decide)


def pending(demo, title: str) -> ChangeRequest:
    cr = services.change_request_create(actor=demo.dev, team=demo.payments, environment=demo.staging, title=title,
                                        artifact="payments-api:2.15.0")
    return services.change_request_submit(actor=demo.dev, change_request=cr)


def awaiting(demo, user):
    """A grant mgr asks for, which a security officer decides (G4)."""
    member(user, demo.payments)
    return governance.role_grant(actor=demo.mgr, user=user, role=demo.roles["reviewer"], team=demo.payments,
                                 environment=demo.production, justification="Cover in production.",
                                 expires_at=timezone.now() + timedelta(days=30))


def test_portal_pages_cost_the_same_at_two_sizes(demo, client_as, api_as, portal):
    def requests():
        calls = {f"{page} ({who})": lambda who=who, path=path: client_as(getattr(demo, who)).get(path)
                 for page, path in (("dashboard", "/"), ("inbox", "/inbox/"))
                 for who in ("dev", "rev", "ops", "sec", "mgr", "auditor")}
        draft = ChangeRequest.objects.get(team=demo.payments, title="Upgrade TLS library")
        dev, dev2, rev, mgr, sec, auditor = (client_as(getattr(demo, who))
                                             for who in ("dev", "dev2", "rev", "mgr", "sec", "auditor"))
        api, asking, sec_api = api_as(demo.rev), portal.asking.pk, api_as(demo.sec)
        review, item = AccessReview.objects.order_by("pk").first(), AccessReviewItem.objects.order_by("pk").first()
        alert = Alert.objects.order_by("pk").first()
        for path in ("access-reviews/", f"access-reviews/{review.pk}/", "access-review-items/",
                     f"access-review-items/{item.pk}/", "alerts/", f"alerts/{alert.pk}/"):
            calls[f"api {path}"] = lambda path=path: sec_api.get(f"/api/v1/{path}")
        admin = client_as(demo.admin)
        for label in ADMIN_LISTS:
            calls[f"admin {label}"] = lambda label=label: admin.get(reverse(f"admin:{label}_changelist"))
        return {
            **calls,
            "access reviews (manager)": lambda: mgr.get("/access-reviews/"),
            "access reviews (security)": lambda: sec.get("/access-reviews/"),
            "access reviews, no campaign of theirs (developer)": lambda: dev.get("/access-reviews/"),
            "all changes (developer)": lambda: dev.get("/changes/"),
            "all changes, filtered (auditor)": lambda: auditor.get("/changes/?state=pending&q=change"),
            "evidence exports (auditor)": lambda: auditor.get("/evidence/"),
            "new change form (developer)": lambda: dev.get("/changes/new/"),
            "edit own draft (its author)": lambda: dev2.get(f"/changes/{draft.pk}/edit/"),
            "change asking for reviewers (reviewer)": lambda: rev.get(f"/changes/{asking}/"),
            "its sign-off form (reviewer)": lambda: rev.get(f"/changes/{asking}/signoff/"),
            "api its gate, approve (reviewer)": lambda: api.get(f"/api/v1/change-requests/{asking}/gate/?action=approve"),
            "api change-requests/{id}/ (requested reviewers)": lambda: api.get(f"/api/v1/change-requests/{asking}/"),
        }

    assert_same_at_two_sizes(portal.grow, requests)


def test_inbox_and_access_review_decisions_cost_the_same_with_more_waiting(demo, client_as, portal):
    """Each post decides what ``portal.grow`` set aside: a grant, an alert, two access-review items."""
    sec, mgr, waiting = client_as(demo.sec), client_as(demo.mgr), portal.to_decide
    decided = {"grants": [], "alerts": [], "items": []}

    def decide(kind, post):
        def call():
            decided[kind].append(waiting[kind].pop(0))
            return post(decided[kind][-1])
        return call

    def requests():
        return {
            "POST inbox/grants/{id}/decide/": decide("grants", lambda grant: sec.post(
                f"/inbox/grants/{grant.pk}/decide/", {"decision": "reject", "reason": "No."})),
            "POST inbox/alerts/{id}/resolve/": decide("alerts", lambda alert: sec.post(
                f"/inbox/alerts/{alert.pk}/resolve/", {"resolution": "Looked: fine."})),
            "POST access-reviews/items/decide/ (two items)": decide("items", lambda items: mgr.post(
                "/access-reviews/items/decide/", {"items": [i.pk for i in items], "decision": "keep",
                                                  "comment": "Still needed."})),
        }

    assert_same_at_two_sizes(portal.grow, requests)
    # Every post went through (a refused one re-renders its page, 200).
    assert RoleAssignment.objects.filter(pk__in=[g.pk for g in decided["grants"]], status="rejected").count() == 4
    assert Alert.objects.filter(pk__in=[a.pk for a in decided["alerts"]], status="resolved").count() == 4
    items = [item.pk for pair in decided["items"] for item in pair]
    assert AccessReviewItem.objects.filter(pk__in=items, decision="keep").count() == len(items) == 8
