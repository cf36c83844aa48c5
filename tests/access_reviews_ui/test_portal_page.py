"""The portal's access-review page: a manager's queue with recommendations, keep and revoke buttons
(a revoke needs a comment), refusals with their codes, and what was decided."""
import pytest

from governance.models import AccessReviewItem, RoleAssignment

PAGE = "/access-reviews/"


def decide_url(item) -> str:
    return f"/access-reviews/items/{item.pk}/decide/"


def test_the_manager_sees_the_payments_grants_to_review_but_not_their_own(demo, client_as, campaign, item_of):
    response = client_as(demo.mgr).get(PAGE)

    awaiting = response.context["awaiting"]
    assert response.status_code == 200
    assert {item.assignment.team for item in awaiting} == {demo.payments}
    assert item_of(demo.mgr, "manager") not in awaiting
    assert item_of(demo.sec, "security") in awaiting
    assert len(awaiting) == AccessReviewItem.objects.filter(assignment__team=demo.payments).count() - 1
    content = response.content.decode()
    assert "No other member of the team holds this role." in content  # ops' outlier recommendation
    assert f'action="{decide_url(item_of(demo.ops, "operations", demo.production))}"' in content
    assert 'value="revoke"' in content and 'value="keep"' in content


def test_security_sees_the_items_assigned_to_security(demo, client_as, campaign, item_of):
    awaiting = client_as(demo.sec).get(PAGE).context["awaiting"]

    assert set(awaiting) == set(AccessReviewItem.objects.filter(reviewer_is_security=True))
    assert item_of(demo.idev, "developer", demo.staging) in awaiting


def test_a_developer_has_nothing_to_review(demo, client_as, campaign):
    response = client_as(demo.dev).get(PAGE)

    assert response.status_code == 200
    assert response.context["awaiting"] == [] and response.context["decided"] == []


def test_keeping_a_grant_moves_it_to_decided(demo, client_as, item_of, messages_in):
    item = item_of(demo.dev, "developer", demo.staging)
    client = client_as(demo.mgr)

    response = client.post(decide_url(item), {"decision": "keep", "comment": ""}, follow=True)

    assert response.redirect_chain[-1][0] == PAGE
    assert messages_in(response) == ["You kept dev's Developer grant in Payments (Staging)."]
    assert item not in response.context["awaiting"]
    assert response.context["decided"][0] == item
    assert AccessReviewItem.objects.get(pk=item.pk).decided_by == demo.mgr


def test_revoking_needs_a_comment_and_then_ends_the_grant(demo, client_as, item_of, nothing_written):
    item = item_of(demo.ops, "operations", demo.production)
    client = client_as(demo.mgr)

    with nothing_written():
        refused = client.post(decide_url(item), {"decision": "revoke", "comment": "  "})
    done = client.post(decide_url(item), {"decision": "revoke", "comment": "Moved to SRE."})

    assert refused.status_code == 400
    assert "Say why the grant is revoked." in refused.content.decode()
    assert done.status_code == 302
    assert RoleAssignment.objects.get(pk=item.assignment_id).status == "revoked"


def test_a_refusal_is_shown_with_its_code(demo, client_as, item_of, nothing_written):
    own = item_of(demo.mgr, "manager")
    client = client_as(demo.mgr)

    with nothing_written():
        response = client.post(decide_url(own), {"decision": "keep"})

    assert response.status_code == 403
    assert [r.code for r in response.context["refusal"].reasons] == ["self_review"]
    assert '<code class="code">self_review</code>' in response.content.decode()


def test_an_item_decided_meanwhile_is_a_conflict(demo, client_as, item_of):
    item = item_of(demo.dev, "developer", demo.staging)
    client = client_as(demo.mgr)
    client.post(decide_url(item), {"decision": "keep"})

    response = client.post(decide_url(item), {"decision": "revoke", "comment": "late"})

    assert response.status_code == 409
    assert "invalid_state" in response.content.decode()


@pytest.mark.parametrize("persona", ["dev", "idev"])
def test_an_item_out_of_sight_is_404(demo, client_as, item_of, nothing_written, persona):
    item = item_of(demo.dev2, "developer", demo.staging)

    with nothing_written():
        response = client_as(getattr(demo, persona)).post(decide_url(item), {"decision": "keep"})

    assert response.status_code == 404


def test_bad_decision_is_400(demo, client_as, item_of, nothing_written):
    item = item_of(demo.dev, "developer", demo.staging)

    with nothing_written():
        response = client_as(demo.mgr).post(decide_url(item), {"decision": "maybe"})

    assert response.status_code == 400


def test_deciding_needs_post_and_a_login(demo, client, item_of):
    item = item_of(demo.dev, "developer", demo.staging)

    assert client.get(PAGE).status_code == 302
    assert client.post(decide_url(item), {"decision": "keep"}).status_code == 302
    client.force_login(demo.mgr)
    assert client.get(decide_url(item)).status_code == 405


@pytest.mark.parametrize(
    "persona, reviews, alerts",
    [("mgr", True, False), ("sec", True, True), ("auditor", False, True), ("dev", False, False)],
)
def test_the_top_bar_links_to_access_reviews_and_alerts_for_those_concerned(
    demo, client_as, campaign, persona, reviews, alerts
):
    content = client_as(getattr(demo, persona)).get("/").content.decode()

    assert ('href="/access-reviews/"' in content) is reviews
    assert ('href="/admin/audit/alert/?status__exact=open"' in content) is alerts


def test_with_no_campaign_the_page_says_who_starts_one_how_and_when_the_schedule_does(demo, client_as):
    """Issue 18: an empty page explains itself. Who: security, review_access holders (managers), an
    administrator; how: the admin's add page (offered to those who may) or the command; when: the
    schedule's next run, read from django-celery-beat (what sync_schedules stored, admins' changes kept)."""
    import html
    import os
    from datetime import datetime, timezone as tz

    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    page = client_as(demo.mgr).get(PAGE)
    text = html.unescape(page.content.decode())
    assert page.context["open_campaigns"] == [] and page.context["next_start"] is None
    assert "No campaign is open" in text
    assert "Security (security_approve), a holder of review_access in the team (its manager), or an administrator." in text
    assert "manage.py access_review_start" in text and "is not set up or is switched off" in text
    assert 'href="/admin/governance/accessreview/add/"' in text  # mgr holds review_access and is staff
    assert 'href="/admin/governance/accessreview/add/"' not in client_as(demo.dev).get(PAGE).content.decode()

    call_command("sync_schedules", stdout=open(os.devnull, "w"))
    page = client_as(demo.mgr).get(PAGE)
    now = datetime.now(tz.utc)
    month = next(m for m in (1, 4, 7, 10, 13) if (m, 1, 6) > (now.month, now.day, now.hour))
    expected = datetime(now.year + (month == 13), 1 if month == 13 else month, 1, 6, 0, tzinfo=tz.utc)
    assert page.context["next_start"].astimezone(tz.utc).replace(second=0, microsecond=0) == expected
    assert f'datetime="{expected:%Y-%m-%dT%H:%M}' in page.content.decode()

    PeriodicTask.objects.filter(task="governance.tasks.start_access_review").update(enabled=False)
    assert client_as(demo.mgr).get(PAGE).context["next_start"] is None


def test_an_open_campaign_is_named_with_its_due_date(demo, client_as, campaign):
    page = client_as(demo.mgr).get(PAGE)

    assert page.context["open_campaigns"] == [campaign]
    assert campaign.name in page.content.decode()
