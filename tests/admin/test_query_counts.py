"""The busiest admin pages run a fixed number of queries however many rows they list: a manager's
grants and the audit trail cost the same with 10 rows as with 500."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import audit
from tests.factories import set_control
from governance import services
from governance.models import Membership, RoleAssignment

pytestmark = pytest.mark.django_db


def queries_for(client, path, params=None) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, params or {})
    assert response.status_code == 200
    return len(captured), response


@pytest.fixture
def platform(demo):
    """A fresh team whose staff manager, ``lead``, sees only its grants (their own included)."""
    team = set_control(by=demo.admin, control="governance.team", name="Platform", slug="platform")
    lead = services.user_provision(username="lead", password="x", is_staff=True, source="tests")
    services.membership_set(actor=demo.admin, team=team, user=lead, is_manager=True)
    services.role_assignment_bootstrap(
        user=lead, role=demo.roles["manager"], team=team, justification="first platform manager",
        expires_at=timezone.now() + timedelta(days=30), source="tests",
    )
    return team, lead


def grow_platform(demo, team, lead, *, to: int) -> None:
    """Grant roles to new platform members until ``lead`` sees ``to`` grants. Every tenth is a
    privileged grant that sec approves, so rows differ in approver, expiry and status."""
    have = RoleAssignment.objects.filter(team=team).count()
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"platform{n}") for n in range(have, to)]
    )
    Membership.objects.bulk_create([Membership(team=team, user=user) for user in users])
    for n, user in enumerate(users, start=have):
        if n % 10 == 0:
            grant = services.role_grant(
                actor=lead, user=user, role=demo.roles["reviewer"], team=team, environment=demo.production,
                justification="release reviews", expires_at=timezone.now() + timedelta(days=30),
            )
            services.role_assignment_approve(actor=demo.sec, assignment=grant)
        else:
            services.role_grant(
                actor=lead, user=user, role=demo.roles["developer"], team=team, environment=demo.development,
                justification="feature work",
            )


def test_grant_changelist_runs_the_same_queries_for_10_and_500_rows(demo, platform, as_user, url):
    team, lead = platform
    client = as_user(lead)
    changelist = url("governance_roleassignment_changelist")
    grow_platform(demo, team, lead, to=10)
    client.get(changelist)  # warm per-process caches (content types, session)

    small, small_page = queries_for(client, changelist)
    grow_platform(demo, team, lead, to=500)
    large, large_page = queries_for(client, changelist)

    assert small_page.context["cl"].result_count == 10
    assert large_page.context["cl"].result_count == 500
    assert len(large_page.context["cl"].result_list) == 100  # one full page
    assert small == large


def test_audit_changelist_runs_the_same_queries_for_10_and_500_rows(demo, as_user, url):
    client = as_user(demo.auditor)
    changelist = url("audit_auditevent_changelist")
    filtered = {"action": "bulk.checked"}

    def record(count):
        for n in range(count):
            audit.record("bulk.checked", actor=demo.dev, target=demo.production, environment="production",
                         team="payments", data={"n": n})

    record(10)
    client.get(changelist, filtered)
    small, small_page = queries_for(client, changelist, filtered)
    record(490)
    large, large_page = queries_for(client, changelist, filtered)

    assert small_page.context["cl"].result_count == 10
    assert large_page.context["cl"].result_count == 500
    assert small == large
