"""Lists and the gate cost a fixed number of queries, however many change requests, approvals,
contributors and grants there are (STYLE.md point 3)."""
from django.db import connection
from django.test.utils import CaptureQueriesContext

from releases import services
from tests.api_releases.shortcuts import CHANGES, DEPLOYMENTS, approved, change_url, deployed, pending
from tests.factories import set_control, UserFactory, bootstrap_grant

LISTINGS = {
    "all": {},
    "filtered": {"environment": "staging", "state": "pending"},
    "awaiting me": {"awaiting_me": "true"},
}


def queries(client, url, **query) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {**query, "limit": 1000})
    assert response.status_code == 200
    return len(captured)


def require_approvals(demo, environment, count: int) -> None:
    set_control(environment.approval_policy, by=demo.admin, second=demo.sec, min_approvals=count)


def reviewers(demo, count: int, start: int = 0) -> list:
    people = [UserFactory(username=f"reviewer{n}") for n in range(start, start + count)]
    for person in people:
        bootstrap_grant(person, "reviewer", demo.payments, demo.staging)
    return people


def reviewed_changes(demo, count: int, people) -> list:
    changes = [pending(demo, demo.dev, demo.staging, contributors=["dev2"]) for _ in range(count)]
    for change in changes:
        for person in people:
            services.change_request_approve(actor=person, change_request=change, comment="ok")
    return changes


def test_listing_change_requests_costs_the_same_for_5_or_40(demo, api_as):
    require_approvals(demo, demo.staging, 10)
    client = api_as(demo.rev)
    client.get(CHANGES)  # the key's first use records last_used_at: not part of the listing's cost
    reviewed_changes(demo, 5, reviewers(demo, 1))
    small = {name: queries(client, CHANGES, **query) for name, query in LISTINGS.items()}

    reviewed_changes(demo, 35, reviewers(demo, 3, start=1))
    large = {name: queries(client, CHANGES, **query) for name, query in LISTINGS.items()}

    assert client.get(CHANGES, {"limit": 1000}).json()["count"] == 9 + 40  # the demo has 9
    assert large == small
    assert max(small.values()) <= 9, small  # 9: the requested reviewers are one prefetch more (issue 18)


def test_listing_deployments_costs_the_same_for_4_or_14(demo, api_as):
    client = api_as(demo.mgr)
    client.get(DEPLOYMENTS)
    small = queries(client, DEPLOYMENTS)
    for _ in range(10):
        deployed(demo, approved(demo, demo.dev, demo.staging))
    assert client.get(DEPLOYMENTS, {"limit": 1000}).json()["count"] == 4 + 10  # the demo has 4
    assert queries(client, DEPLOYMENTS) == small <= 6


def test_the_gate_costs_the_same_for_2_or_20_approvals(demo, api_as):
    require_approvals(demo, demo.staging, 25)
    [change] = reviewed_changes(demo, 1, reviewers(demo, 2))
    ops, rev = api_as(demo.ops), api_as(demo.rev)
    ops.get(CHANGES), rev.get(CHANGES)
    small = (queries(ops, change_url(change, "gate"), action="deploy"),
             queries(rev, change_url(change, "gate"), action="approve"))

    for person in reviewers(demo, 18, start=2):
        services.change_request_approve(actor=person, change_request=change, comment="ok")
    bootstrap_grant(demo.ops, "operations", demo.payments, demo.development)
    bootstrap_grant(demo.ops, "compliance", demo.payments)
    large = (queries(ops, change_url(change, "gate"), action="deploy"),
             queries(rev, change_url(change, "gate"), action="approve"))

    assert len(rev.get(change_url(change)).json()["approvals"]) == 20
    assert large == small
    assert max(small) <= 10, small


def test_retrieving_a_change_costs_the_same_for_2_or_20_approvals(demo, api_as):
    require_approvals(demo, demo.staging, 25)
    [change] = reviewed_changes(demo, 1, reviewers(demo, 2))
    client = api_as(demo.rev)
    client.get(CHANGES)
    small = queries(client, change_url(change))
    for person in reviewers(demo, 18, start=2):
        services.change_request_approve(actor=person, change_request=change, comment="ok")
    assert queries(client, change_url(change)) == small
