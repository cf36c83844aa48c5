"""List filters: state, environment, team, author, and ``awaiting_me`` (a reviewer's queue)."""
from governance import services as governance_services
from governance.models import RoleAssignment
from releases import services
from releases.models import ChangeRequest
from tests.api_releases.shortcuts import CHANGES, DEPLOYMENTS, change_url, new_artifact, pending


def ids(client, **query) -> set[int]:
    response = client.get(CHANGES, {**query, "limit": 1000})
    assert response.status_code == 200
    return {change["id"] for change in response.json()["results"]}


def visible_to_payments(**lookup) -> set[int]:
    return set(ChangeRequest.objects.filter(team__slug="payments", **lookup).values_list("pk", flat=True))


def test_filters_by_state_environment_team_and_author(demo, api_as):
    client = api_as(demo.mgr)
    assert ids(client, state="pending") == visible_to_payments(state="pending")
    assert ids(client, environment="production") == visible_to_payments(environment__slug="production")
    assert ids(client, team="payments") == visible_to_payments()
    assert ids(client, team="identity") == set()
    assert ids(client, author="dev2") == visible_to_payments(author__username="dev2")
    assert ids(client, author="dev2", environment="staging", state="rejected") == visible_to_payments(
        author__username="dev2", environment__slug="staging", state="rejected")
    assert ids(client, environment="nowhere") == set()


def test_awaiting_me_is_a_reviewers_queue(demo, api_as):
    [production_demo] = ChangeRequest.objects.filter(state="pending", environment=demo.production)
    from_dev2 = pending(demo, demo.dev2, demo.staging)
    rev_contributed = pending(demo, demo.dev, demo.staging, contributors=["rev"])
    rev_signed = pending(demo, demo.dev, demo.production)
    services.change_request_approve(actor=demo.rev, change_request=rev_signed, via="portal", comment="Signed.")
    identity_change = services.change_request_submit(actor=demo.idev, change_request=services.change_request_create(
        actor=demo.idev, team=demo.identity, environment=demo.staging, title="SSO", artifact="sso:1"))
    rev, rev2, sec, ops = (api_as(user) for user in (demo.rev, demo.rev2, demo.sec, demo.ops))

    assert ids(rev, awaiting_me="true") == {production_demo.pk, from_dev2.pk}
    assert ids(rev2, awaiting_me="true") == {production_demo.pk, from_dev2.pk, rev_contributed.pk, rev_signed.pk}
    # rev holds approve on staging too, but identity's change is not visible to rev (V1); security sees all.
    assert ids(sec, awaiting_me="true") == {
        production_demo.pk, from_dev2.pk, rev_contributed.pk, rev_signed.pk, identity_change.pk}
    assert ids(ops, awaiting_me="true") == set()
    assert ids(api_as(demo.auditor), awaiting_me="true") == set()
    assert ids(rev, awaiting_me="false") == ids(rev) - {production_demo.pk, from_dev2.pk}


def test_a_new_revision_puts_the_change_back_in_the_queue(demo, api_as):
    change = pending(demo, demo.dev, demo.production)
    services.change_request_approve(actor=demo.rev, change_request=change, via="portal", comment="Signed.")
    rev = api_as(demo.rev)
    assert change.pk not in ids(rev, awaiting_me="true")

    services.change_request_update(actor=demo.dev, change_request=change, changes={"artifact": new_artifact()})

    assert change.pk in ids(rev, awaiting_me="true")


def test_a_revoked_grant_empties_the_queue_at_once(demo, api_as):
    change = pending(demo, demo.dev, demo.staging)
    rev = api_as(demo.rev)
    assert change.pk in ids(rev, awaiting_me="true")
    grant = RoleAssignment.objects.get(user=demo.rev, environment=demo.staging, status="active")
    governance_services.role_assignment_revoke(actor=demo.mgr, assignment=grant, reason="Left the rota.")
    assert change.pk not in ids(rev, awaiting_me="true")


def test_reading_one_change_ignores_list_filters(demo, api_as):
    change = pending(demo, demo.dev, demo.staging)
    response = api_as(demo.rev).get(change_url(change) + "?state=approved&awaiting_me=false")
    assert response.status_code == 200 and response.json()["id"] == change.pk


def test_deployments_filter_by_change_environment_deployer_and_state(demo, api_as):
    client = api_as(demo.mgr)
    [staged] = ChangeRequest.objects.filter(title__startswith="Retry card", environment=demo.staging)
    listing = client.get(DEPLOYMENTS, {"change_request": staged.pk}).json()["results"]
    assert [(d["change_request"], d["environment"], d["state"]) for d in listing] == [
        (staged.pk, "staging", "succeeded")]
    # The demo: ops deployed four changes (two releases through staging, one of them on to production).
    assert client.get(DEPLOYMENTS, {"deployer": "ops", "state": "succeeded"}).json()["count"] == 4
    assert client.get(DEPLOYMENTS, {"environment": "production"}).json()["count"] == 1
    assert client.get(DEPLOYMENTS, {"environment": "development"}).json()["count"] == 0
