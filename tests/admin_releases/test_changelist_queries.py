"""The change and deployment lists cost a fixed number of queries, however many rows they show:
every column's related row comes with the page (``list_select_related``), permissions are read
once per request."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance import services as governance_services
from releases import services
from releases.models import ChangeRequest, Deployment
from tests.admin_releases.shortcuts import admin_url


def queries_to_render(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def add_changes(demo, count: int) -> None:
    """Changes by several authors, in both teams and every environment, so the rows do not share
    their related objects."""
    authors = [(demo.dev, demo.payments), (demo.dev2, demo.payments), (demo.idev, demo.identity)]
    environments = [demo.development, demo.staging, demo.production]
    for n in range(count):
        author, team = authors[n % len(authors)]
        services.change_request_create(
            actor=author, team=team, environment=environments[n % len(environments)], title=f"Change {n}",
            artifact=f"app:{n}",
        )


def add_deployments(demo, count: int) -> None:
    """Development changes (no approvals needed there) deployed by ops, who gets deploy on it."""
    for n in range(count):
        change = services.change_request_create(
            actor=demo.dev, team=demo.payments, environment=demo.development, title=f"Dev change {n}",
            artifact=f"app:dev-{n}",
        )
        change = services.change_request_submit(actor=demo.dev, change_request=change)
        services.deployment_start(actor=demo.ops, change_request=change)


@pytest.fixture
def ops_deploys_to_development(demo):
    governance_services.role_grant(
        actor=demo.mgr, user=demo.ops, role=demo.roles["operations"], team=demo.payments,
        environment=demo.development, justification="ops deploys development builds",
    )


@pytest.mark.parametrize("viewer", ["auditor", "mgr", "admin"])
def test_the_change_list_costs_the_same_at_fifty_rows(demo, signed_in, viewer):
    client = signed_in(getattr(demo, viewer))
    url = admin_url(ChangeRequest, "changelist")
    client.get(url)
    seeded = ChangeRequest.objects.count()
    few = queries_to_render(client, url)

    add_changes(demo, 50 - seeded)
    many = queries_to_render(client, url)

    assert ChangeRequest.objects.count() == 50
    assert many == few


def test_the_change_list_filtered_and_searched_costs_the_same_at_fifty_rows(demo, signed_in):
    client = signed_in(demo.auditor)
    url = admin_url(ChangeRequest, "changelist") + f"?team__id__exact={demo.payments.pk}&q=a&state__exact=draft"
    client.get(url)
    few = queries_to_render(client, url)

    add_changes(demo, 43)
    many = queries_to_render(client, url)

    assert many == few


def test_the_deployment_list_costs_the_same_at_twenty_rows(demo, signed_in, ops_deploys_to_development):
    client = signed_in(demo.auditor)
    url = admin_url(Deployment, "changelist")
    client.get(url)
    few = queries_to_render(client, url)

    add_deployments(demo, 18)
    many = queries_to_render(client, url)

    assert Deployment.objects.count() == 22  # the demo's 4 and 18 more
    assert many == few
