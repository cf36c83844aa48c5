"""No grant combination crashes a page (issue 14, class 5).

Hypothesis gives a persona a random set of role assignments — any role, either team, one
environment or every environment, active, pending, rejected, revoked, expired, or active with
its expiry already past and not yet processed — adds duplicates and overlaps the services would
refuse today but that exist in real databases (a grant made before a conflict rule, a security
role for every environment beside a reviewer role for one), and then renders, as that user,
every portal page and every admin index, changelist and change page of the authorisation
matrix. None may answer 500; what a page answers otherwise is the matrix's business.

The grants are written as rows (and synced to guardian, as the services would): the point is
that reading any state the table can hold is safe, not that the services produce it. Each
example runs in a savepoint of the module's world (``matrix.build_world``, built once): no
reseeding, so CI's PostgreSQL pass affords ``GRANT_COMBINATION_EXAMPLES`` examples (default 100
there, 25 on SQLite, where the suite's other passes already cover these pages once).
"""
import os
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.models import Environment, Membership, Role, RoleAssignment, Team
from governance.permissions import sync_permissions
from tests.security import matrix

pytestmark = [pytest.mark.filterwarnings("ignore:No directory at:UserWarning"), pytest.mark.sweep]

ON_POSTGRES = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
EXAMPLES = int(os.environ.get("GRANT_COMBINATION_EXAMPLES", "100" if ON_POSTGRES else "25"))

PERSONAS = [p for p in matrix.PERSONAS if p != "anonymous"]
ROLES = ["developer", "reviewer", "security", "operations", "manager", "compliance"]
TEAMS = ["payments", "identity"]
ENVIRONMENTS = [None, "development", "staging", "production"]  # None: every environment
S = RoleAssignment.Status
# (status, expiry relative to now in days, None for none): a negative expiry on an active grant is
# one the expiry task has not reached yet.
STATES = [
    (S.ACTIVE, None), (S.ACTIVE, 30), (S.ACTIVE, -1), (S.PENDING, 30), (S.PENDING, -1),
    (S.REJECTED, None), (S.REVOKED, None), (S.EXPIRED, -1),
]

GRANT = st.tuples(st.sampled_from(ROLES), st.sampled_from(TEAMS), st.sampled_from(ENVIRONMENTS),
                  st.sampled_from(STATES))
# The combinations the review found crashing, made likely: one role for every environment and
# for one environment, side by side.
OVERLAP = st.tuples(st.sampled_from(ROLES), st.sampled_from(TEAMS), st.sampled_from(ENVIRONMENTS[1:])).map(
    lambda g: [(g[0], g[1], None, (S.ACTIVE, None)), (g[0], g[1], g[2], (S.ACTIVE, 30))])
GRANT_SETS = st.tuples(st.lists(GRANT, max_size=6), st.lists(OVERLAP, max_size=1)).map(
    lambda parts: parts[0] + [g for pair in parts[1] for g in pair])


def _pages() -> list[str]:
    """GET pages a signed-in user may render: the portal's, the admin's index and app pages, and
    each registered model's changelist and change page."""
    portal = [row for row in matrix.PAGE_ROWS if row.method == "GET" and row.name not in ("login", "healthz")]
    admin_site = [row for row in matrix.ADMIN_SITE_ROWS if row.method == "GET" and row.name != "admin-login"]
    models = [row for row in matrix.admin_rows() if row.name.endswith(("-changelist", "-change"))]
    return [row.url for row in portal + admin_site + models]


@pytest.fixture(scope="module")
def world(seeded_demo, django_db_blocker):
    with django_db_blocker.unblock():
        built = matrix.build_world()
        built["pages"] = [url.format(**built["ids"]) for url in _pages()]
        return built


def _give(user, grants, *, staff: bool, now) -> None:
    roles = {r.slug: r for r in Role.objects.all()}
    teams = {t.slug: t for t in Team.objects.all()}
    environments = {e.slug: e for e in Environment.objects.all()}
    for role, team, environment, (status, expiry_days) in grants:
        Membership.objects.get_or_create(user=user, team=teams[team])
        RoleAssignment.objects.create(
            user=user, role=roles[role], team=teams[team],
            environment=environments[environment] if environment else None,
            status=status, justification="Hypothesis.", requested_by=user,
            expires_at=now + timedelta(days=expiry_days) if expiry_days is not None else None,
            ended_at=now if status in (S.REVOKED, S.EXPIRED, S.REJECTED) else None,
        )
    if staff != user.is_staff:
        get_user_model().objects.filter(pk=user.pk).update(is_staff=staff)
        user.refresh_from_db()
    sync_permissions(user)


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(persona=st.sampled_from(PERSONAS), grants=GRANT_SETS, staff=st.booleans())
def test_no_page_crashes_for_any_grant_combination(world, db, persona, grants, staff):
    render_without_a_crash(world["pages"][0::2], persona, grants, staff)


def render_without_a_crash(pages, persona, grants, staff) -> None:
    """Give ``persona`` the grants and render ``pages`` as them, in a savepoint rolled back after.

    The pages are shared between two files (this one takes every other page, from the first;
    tests/security/test_grant_combinations_other_pages.py the rest), each with its own
    ``EXAMPLES`` grant sets, so pytest-xdist (``--dist loadfile``) runs the halves on two workers:
    every page still sees ``EXAMPLES`` random grant sets."""
    savepoint = transaction.atomic()
    savepoint.__enter__()
    try:
        user = get_user_model().objects.get(username=persona)
        _give(user, grants, staff=staff or user.is_staff, now=timezone.now())
        client = Client(raise_request_exception=False)
        client.force_login(user)
        crashed = [url for url in pages if client.get(url).status_code >= 500]
        assert crashed == [], f"{persona} (staff={user.is_staff}) with {grants}: 500 on {crashed}"
    finally:
        transaction.set_rollback(True)
        savepoint.__exit__(None, None, None)
