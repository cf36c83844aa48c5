"""The dashboard answers "what is waiting for me?" for each persona, in a constant number of queries."""
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance import services as governance_services
from releases import services
from releases.models import ChangeRequest
from tests.factories import set_control


def sections(client):
    context = client.get("/").context
    return {
        "awaiting_review": [cr.pk for cr in context["awaiting_review"]],
        "ready_to_deploy": [cr.pk for cr in context["ready_to_deploy"]],
        "held_back": [cr.pk for cr, _ in context["held_back"]],
        "my_requests": [cr.pk for cr in context["my_requests"]],
        "pir_due": [cr.pk for cr in context["pir_due"]],
    }


def test_rev_sees_the_pending_production_change_awaiting_review(demo, changes, client_as):
    rev = client_as(demo.rev)

    response = rev.get("/")
    mine = sections(rev)

    assert (mine["awaiting_review"], mine["ready_to_deploy"]) == ([changes.retry_production.pk], [])
    assert f'href="/changes/{changes.retry_production.pk}/signoff/"'.encode() in response.content


def test_rev_no_longer_sees_a_change_once_they_decided_this_revision(demo, changes, client_as):
    services.change_request_approve(actor=demo.rev, change_request=changes.retry_production, via="portal")

    assert sections(client_as(demo.rev))["awaiting_review"] == []
    assert sections(client_as(demo.rev2))["awaiting_review"] == [changes.retry_production.pk]


def test_a_new_revision_puts_the_change_back_in_front_of_its_reviewer(demo, changes, client_as):
    services.change_request_approve(actor=demo.rev, change_request=changes.retry_production, via="portal")
    services.change_request_update(actor=demo.dev, change_request=changes.retry_production,
                                   changes={"artifact": "payments-api:2.14.1"})

    assert sections(client_as(demo.rev))["awaiting_review"] == [changes.retry_production.pk]


def test_authors_and_contributors_never_see_their_own_change_to_review(demo, client_as, submitted):
    governance_services.role_grant(
        actor=demo.mgr, user=demo.dev2, role=demo.roles["reviewer"], team=demo.payments,
        environment=demo.staging, justification="dev2 reviews staging this sprint",
    )
    contributed = submitted(demo.dev, demo.staging, contributors=["dev2"])
    own = submitted(demo.dev2, demo.staging, title="dev2's own change")

    assert sections(client_as(demo.dev2))["awaiting_review"] == []
    assert {contributed.pk, own.pk} <= set(sections(client_as(demo.rev))["awaiting_review"])


def test_ops_sees_the_approved_production_change_ready_to_deploy(demo, changes, client_as):
    ops = client_as(demo.ops)

    ready = sections(ops)["ready_to_deploy"]

    assert changes.rotate_production.pk in ready
    assert changes.standard.pk in ready  # the auto-approved standard change in staging
    assert changes.retry_production.pk not in ready  # still pending
    assert sections(ops)["awaiting_review"] == []


def test_an_approver_never_sees_the_change_as_ready_to_deploy(demo, changes, client_as, submitted):
    governance_services.role_grant(
        actor=demo.mgr, user=demo.rev2, role=demo.roles["operations"], team=demo.payments,
        environment=demo.staging, justification="rev2 covers staging rollouts",
    )
    pending = submitted(demo.dev, demo.staging)
    approved_by_rev2 = services.change_request_approve(actor=demo.rev2, change_request=pending)

    ready = sections(client_as(demo.rev2))["ready_to_deploy"]

    assert approved_by_rev2.state == "approved"
    assert approved_by_rev2.pk not in ready
    assert changes.standard.pk in ready
    assert changes.rotate_production.pk not in ready  # no deploy duty in production


def test_a_freeze_holds_changes_back_with_its_reason(demo, changes, client_as):
    now = timezone.now()
    set_control(by=demo.sec, control="releases.freezewindow", name="Quarter close", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1), environments=[demo.production])
    context = client_as(demo.ops).get("/").context

    assert changes.rotate_production not in context["ready_to_deploy"]
    held = {cr.pk: decision.codes for cr, decision in context["held_back"]}
    assert held == {changes.rotate_production.pk: ["freeze_window_active"]}


def test_dev_sees_their_open_requests_and_their_duties(demo, changes, client_as):
    response = client_as(demo.dev).get("/")

    mine = {cr.pk for cr in response.context["my_requests"]}
    assert mine == {changes.retry_production.pk, changes.standard.pk}
    assert {(g.role.slug, g.environment.slug) for g in response.context["grants"]} == {
        ("developer", "development"), ("developer", "staging"), ("developer", "production"),
    }
    assert b'title="Submit change requests"' in response.content


def grow(demo, submitted, count):
    """``count`` more production changes waiting for review and staging changes ready to deploy."""
    for n in range(count):
        pending = submitted(demo.dev, demo.production, title=f"Feature flag {n}", artifact=f"payments-api@sha256:{n:064x}",
                            contributors=["dev2"])
        ready = submitted(demo.dev2, demo.staging, title=f"Config tweak {n}", artifact=f"payments-api:4.{n}.0")
        services.change_request_approve(actor=demo.rev2, change_request=ready, comment="ok")
        services.change_request_approve(actor=demo.rev2, change_request=pending, via="portal")


def dashboard_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return len(queries)


def test_the_dashboard_costs_the_same_queries_at_two_sizes(demo, changes, client_as, submitted):
    personas = {name: client_as(getattr(demo, name)) for name in ("rev", "ops", "dev", "auditor")}
    grow(demo, submitted, 1)
    small = {name: dashboard_queries(client) for name, client in personas.items()}
    small_rows = len(personas["ops"].get("/").context["ready_to_deploy"])

    grow(demo, submitted, 6)
    large = {name: dashboard_queries(client) for name, client in personas.items()}

    assert len(personas["ops"].get("/").context["ready_to_deploy"]) == small_rows + 6
    assert len(personas["rev"].get("/").context["awaiting_review"]) == 1 + 7
    assert ChangeRequest.objects.count() > 20
    assert large == small
