"""Access-review items decided many at once with one comment (issue 18, RULES.md A3): keep goes
straight through, revoke shows what will end and asks to confirm; all or nothing — one item that
may not be decided leaves every item undecided and every grant as it was, and the refusal names it."""
import html
from contextlib import contextmanager

import pytest
from guardian.models import UserObjectPermission

from audit.models import AuditEvent
from core.errors import Denied
from governance import services
from governance.models import AccessReviewItem, RoleAssignment

PAGE = "/access-reviews/"
BULK = "/access-reviews/items/decide/"


@pytest.fixture
def campaign(demo):
    return services.access_review_start(actor=demo.mgr, period="bulk", team=demo.payments)


@pytest.fixture
def item_of(campaign):
    def find(user, role_slug, environment=None):
        return AccessReviewItem.objects.select_related("assignment").get(
            review=campaign, assignment__user=user, assignment__role__slug=role_slug,
            assignment__environment=environment)

    return find


@pytest.fixture
def nothing_written(db):
    @contextmanager
    def guard():
        def state():
            return (list(AccessReviewItem.objects.order_by("pk").values_list("pk", "decision", "decided_by_id")),
                    list(RoleAssignment.objects.order_by("pk").values_list("pk", "status")),
                    AuditEvent.objects.count(), UserObjectPermission.objects.count())

        before = state()
        yield
        assert state() == before

    return guard


def codes(response) -> list[str]:
    return [reason.code for reason in response.context["refusal"].reasons]


def test_the_page_offers_each_item_a_checkbox_and_one_form_for_the_chosen(demo, client_as, item_of):
    item = item_of(demo.dev, "developer", demo.staging)
    content = html.unescape(client_as(demo.mgr).get(PAGE).content.decode())

    assert f'name="items" value="{item.pk}" form="bulk-decide"' in content
    assert "Choose dev's Developer grant in Payments (Staging)" in content
    assert f'action="{BULK}" id="bulk-decide"' in content


def test_keeping_many_with_one_comment(demo, client_as, item_of, messages_in):
    chosen = [item_of(demo.dev, "developer", demo.staging), item_of(demo.dev2, "developer", demo.staging)]

    response = client_as(demo.mgr).post(BULK, {"items": [i.pk for i in chosen], "decision": "keep",
                                               "comment": "Both still ship payments."}, follow=True)

    assert response.redirect_chain[-1] == (PAGE, 302)
    assert messages_in(response) == ["You kept 2 grants."]
    decided = AccessReviewItem.objects.filter(pk__in=[i.pk for i in chosen])
    assert {(i.decision, i.decided_by, i.comment) for i in decided} == {("keep", demo.mgr, "Both still ship payments.")}
    assert AuditEvent.objects.filter(action="access_review.item_decided", actor_username="mgr").count() == 2


def test_revoking_many_asks_to_confirm_first_and_then_ends_them(demo, client_as, item_of, nothing_written,
                                                                 messages_in):
    chosen = [item_of(demo.dev, "developer", demo.development), item_of(demo.dev2, "developer", demo.development)]
    client = client_as(demo.mgr)
    data = {"items": [i.pk for i in chosen], "decision": "revoke", "comment": "Nobody deploys to dev by hand now."}

    with nothing_written():
        confirm = client.post(BULK, data)
    assert confirm.status_code == 200
    assert confirm.templates[0].name == "governance/access_reviews_confirm.html"
    content = confirm.content.decode()
    assert "Revoke 2 grants?" in content and 'name="confirm" value="on"' in content

    response = client.post(BULK, {**data, "confirm": "on"}, follow=True)

    assert messages_in(response) == ["You revoked 2 grants; they ended at once."]
    for item in chosen:
        item.refresh_from_db()
        item.assignment.refresh_from_db()
        assert item.decision == "revoke" and item.assignment.status == RoleAssignment.Status.REVOKED


def test_revoking_without_a_comment_is_400_and_nothing_changes(demo, client_as, item_of, nothing_written):
    item = item_of(demo.dev, "developer", demo.development)

    with nothing_written():
        response = client_as(demo.mgr).post(BULK, {"items": [item.pk], "decision": "revoke", "comment": "",
                                                   "confirm": "on"})

    assert response.status_code == 400
    assert codes(response) == ["invalid"]
    assert "Say why the grants are revoked." in response.context["refusal"].reasons[0].message
    content = response.content.decode()
    assert 'id="refusal" role="alert" tabindex="-1" autofocus' in content
    assert f'value="{item.pk}" form="bulk-decide" checked' in content  # the choice is kept


def test_one_item_decided_meanwhile_leaves_every_item_undecided(demo, client_as, item_of, nothing_written):
    fresh = item_of(demo.dev, "developer", demo.staging)
    stale = item_of(demo.dev2, "developer", demo.staging)
    services.access_review_item_decide(actor=demo.mgr, item=stale, decision="keep")
    also = item_of(demo.ops, "operations", demo.staging)

    with nothing_written():
        response = client_as(demo.mgr).post(BULK, {"items": [fresh.pk, stale.pk, also.pk], "decision": "revoke",
                                                   "comment": "Tidy up.", "confirm": "on"})

    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]
    assert response.context["refusal"].reasons[0].message.startswith("dev2's Developer grant in Payments (Staging):")
    assert response.context["refusal"].title == "Nothing was decided: one of the 3 grants chosen was refused"


def test_ones_own_grant_among_many_is_refused_and_nothing_changes(demo, client_as, item_of, nothing_written):
    chosen = [item_of(demo.dev, "developer", demo.staging), item_of(demo.mgr, "manager")]

    with nothing_written():
        response = client_as(demo.mgr).post(BULK, {"items": [i.pk for i in chosen], "decision": "keep"})

    assert response.status_code == 403
    assert codes(response) == ["self_review"]
    assert response.context["refusal"].reasons[0].message.startswith("mgr's Manager grant in Payments")


def test_an_item_the_user_may_not_see_is_400_and_nothing_changes(demo, client_as, item_of, nothing_written):
    other = services.access_review_start(actor=demo.admin, period="bulk-identity", team=demo.identity)
    hidden = other.items.order_by("pk").first()

    with nothing_written():
        response = client_as(demo.mgr).post(BULK, {"items": [item_of(demo.dev, "developer", demo.staging).pk,
                                                             hidden.pk], "decision": "keep"})

    assert response.status_code == 400
    assert response.context["refusal"].reasons[0].message == "One of the grants chosen is not one you can see."


def test_choosing_nothing_is_400(demo, client_as, campaign, nothing_written):
    with nothing_written():
        response = client_as(demo.mgr).post(BULK, {"decision": "keep"})

    assert response.status_code == 400
    assert response.context["refusal"].reasons[0].message == "Choose at least one grant."


def test_the_service_is_all_or_nothing(demo, item_of, nothing_written):
    """The rule's home, without the page: the first refusal undoes the items decided before it."""
    fine = item_of(demo.dev, "developer", demo.staging)
    own = item_of(demo.mgr, "manager")

    with nothing_written(), pytest.raises(Denied) as refused:
        services.access_review_items_decide(actor=demo.mgr, items=[fine, own], decision="keep")

    assert refused.value.item == own
