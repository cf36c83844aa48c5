"""Access reviews in the admin: starting a campaign, deciding items in bulk with per-item messages,
closing; every write through the access-review services, refusals shown with their codes."""
import pytest
from django.urls import reverse

from governance.models import AccessReview, AccessReviewItem, RoleAssignment
from governance.tasks import current_quarter

REVIEWS = reverse("admin:governance_accessreview_changelist")
START = reverse("admin:governance_accessreview_add")
ITEMS = reverse("admin:governance_accessreviewitem_changelist")


def start_form(team=None, period="2027-Q1", policy="revoke", due_days=14) -> dict:
    return {"period": period, "team": team.pk if team else "", "undecided_policy": policy, "due_days": due_days,
            "_save": "Save"}


def run_action(client, changelist, action, objects, **extra):
    data = {"action": action, "_selected_action": [obj.pk for obj in objects], "index": 0, **extra}
    return client.post(changelist, data, follow=True)


def test_security_starts_an_every_team_campaign_from_the_changelist(demo, client_as, messages_in):
    client = client_as(demo.sec)

    changelist = client.get(REVIEWS).content.decode()
    form = client.get(START)
    response = client.post(START, start_form(), follow=True)

    assert "Start access review now" in changelist
    assert form.context["adminform"].form.initial["period"] == current_quarter()
    review = AccessReview.objects.get()
    assert (review.period, review.team, review.started_by, review.status) == ("2027-Q1", None, demo.sec, "open")
    assert review.items.count() == RoleAssignment.objects.in_force().count()
    assert messages_in(response)[-1] == f"{review} is open with 18 items."


def test_starting_the_same_period_again_reports_the_existing_campaign(demo, client_as, messages_in):
    client = client_as(demo.sec)
    client.post(START, start_form())

    response = client.post(START, start_form(), follow=True)

    assert AccessReview.objects.count() == 1
    assert "already existed" in messages_in(response)[-1]


def test_the_manager_starts_their_teams_campaign_but_not_every_teams(demo, client_as):
    client = client_as(demo.mgr)

    refused = client.post(START, start_form())
    started = client.post(START, start_form(team=demo.payments))

    assert refused.status_code == 200
    assert "missing_duty" in str(refused.context["adminform"].form.non_field_errors())
    assert started.status_code == 302
    assert AccessReview.objects.get().team == demo.payments


def test_people_without_review_duties_cannot_start(demo, client_as):
    assert client_as(demo.auditor).get(START).status_code == 403
    assert client_as(demo.auditor).get(REVIEWS).status_code == 200
    assert not AccessReview.objects.exists()


def test_the_manager_keeps_and_revokes_in_bulk_with_a_message_per_item(demo, client_as, item_of, messages_in):
    keep = [item_of(demo.dev, "developer", demo.staging), item_of(demo.mgr, "manager")]
    revoke = [item_of(demo.ops, "operations", demo.production)]
    client = client_as(demo.mgr)

    kept = run_action(client, ITEMS, "keep_selected", keep)
    revoked = run_action(client, ITEMS, "revoke_selected", revoke, comment="Moved to SRE.")

    kept_messages = messages_in(kept)
    assert f"{keep[0]}: kept." in kept_messages
    assert any(m.startswith(f"{keep[1]}: not kept. self_review:") for m in kept_messages)
    assert AccessReviewItem.objects.get(pk=keep[1].pk).decision == ""
    assert messages_in(revoked) == [f"{revoke[0]}: revoked."]
    assert RoleAssignment.objects.get(pk=revoke[0].assignment_id).status == "revoked"


def test_revoking_without_a_comment_is_refused_per_item(demo, client_as, item_of, messages_in, nothing_written):
    item = item_of(demo.ops, "operations", demo.production)

    with nothing_written():
        response = run_action(client_as(demo.mgr), ITEMS, "revoke_selected", [item], comment="")

    assert messages_in(response) == [f"{item}: not revoked. comment: Say why the grant is revoked."]


def test_the_manager_sees_only_payments_items(demo, client_as, campaign):
    response = client_as(demo.mgr).get(ITEMS)

    shown = set(response.context["cl"].result_list)
    assert shown == set(AccessReviewItem.objects.filter(assignment__team=demo.payments))
    idev_item = AccessReviewItem.objects.filter(assignment__user=demo.idev).first()
    idev_page = reverse("admin:governance_accessreviewitem_change", args=[idev_item.pk])
    assert client_as(demo.mgr).get(idev_page).status_code == 302


def test_the_auditor_reads_items_but_is_offered_no_decision(demo, client_as, campaign):
    response = client_as(demo.auditor).get(ITEMS)

    assert response.context["cl"].result_count == AccessReviewItem.objects.count()
    assert "keep_selected" not in response.content.decode()


def test_security_closes_a_campaign_and_undecided_grants_are_revoked(demo, client_as, campaign, item_of, messages_in):
    kept = item_of(demo.dev, "developer", demo.staging)
    run_action(client_as(demo.mgr), ITEMS, "keep_selected", [kept])

    response = run_action(client_as(demo.sec), REVIEWS, "close_selected", [campaign])

    assert messages_in(response) == [f"{campaign}: closed."]
    assert AccessReview.objects.get(pk=campaign.pk).status == "closed"
    assert RoleAssignment.objects.get(pk=kept.assignment_id).status == "active"
    undecided = item_of(demo.dev2, "developer", demo.staging)
    assert RoleAssignment.objects.get(pk=undecided.assignment_id).status == "revoked"


def test_a_manager_may_not_close_the_every_team_campaign(demo, client_as, campaign, messages_in, nothing_written):
    with nothing_written():
        response = run_action(client_as(demo.mgr), REVIEWS, "close_selected", [campaign])

    assert messages_in(response) == [
        f"{campaign}: not closed. missing_duty: Closing a campaign needs review_access in its team or security_approve."
    ]
    assert AccessReview.objects.get(pk=campaign.pk).status == "open"


def test_a_campaign_page_is_read_only_and_links_to_its_items(demo, client_as, campaign):
    page = client_as(demo.mgr).get(reverse("admin:governance_accessreview_change", args=[campaign.pk]))

    content = page.content.decode()
    assert page.status_code == 200
    assert f"{ITEMS}?review__id__exact={campaign.pk}" in content
    assert 'name="period"' not in content


@pytest.mark.parametrize("persona", ["dev", "idev"])
def test_non_staff_do_not_reach_the_admin(demo, client_as, campaign, persona):
    assert client_as(getattr(demo, persona)).get(ITEMS).status_code == 302


@pytest.mark.parametrize("changelist", [ITEMS, REVIEWS])
def test_changelists_cost_the_same_queries_at_two_sizes(demo, client_as, changelist):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from governance import services
    from tests.factories import UserFactory, bootstrap_grant

    client = client_as(demo.mgr)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(changelist).status_code == 200
        return len(captured)

    services.access_review_start(period="2026-Q3")
    client.get(changelist)
    small = queries()
    for n in range(30):
        bootstrap_grant(UserFactory(username=f"bulk{n}"), "developer", demo.payments, demo.development)
    services.access_review_start(period="2026-Q4")
    large = queries()

    assert AccessReviewItem.objects.count() > 60
    assert large == small
