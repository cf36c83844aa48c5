"""The policy engine reads nothing itself, and what feeds it (``change_request_for_decision`` and
``policy_context``) runs a fixed number of queries however many approvals, grants, contributors,
freeze windows and other change requests there are (STYLE.md point 3)."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from releases import services
from releases.models import ChangeRequest
from releases.policy import ACTIONS, evaluate
from releases.selectors import change_request_for_decision, policy_context
from tests.factories import set_control, UserFactory, bootstrap_grant
from tests.releases.stories import draft, new_artifact, pending_in_production, staged


def queries_to_decide(cr_pk, actor, at, *, via="portal") -> int:
    with CaptureQueriesContext(connection) as queries:
        ctx = policy_context(change_request_for_decision(cr_pk), actor, at=at)
        for action in ACTIONS:
            evaluate(ctx, action, at, via=via)
    return len(queries)


def sign_off(demo, cr, at):
    for reviewer in (demo.rev, demo.rev2):
        cr = services.change_request_approve(actor=reviewer, change_request=cr, via="portal", at=at)
    return cr


def crowd(demo, at, size: int):
    """``size`` more payments people, each holding a production grant, each with a change of their own team."""
    people = [UserFactory(username=f"crowd{n}") for n in range(size)]
    for person in people:
        bootstrap_grant(person, "reviewer", demo.payments, demo.production)
        bootstrap_grant(person, "developer", demo.payments, demo.staging)
        draft(demo, at, author=person, environment=demo.staging)
    return people


def test_deciding_costs_the_same_for_two_approvals_as_for_thirty(demo, now):
    small = sign_off(demo, pending_in_production(demo, now), now)
    assert small.approvals.count() == 2
    measured = {actor.username: queries_to_decide(small.pk, actor, now) for actor in (demo.ops, demo.rev, demo.dev)}

    people = crowd(demo, now, 30)
    for extra_environment in (demo.development, demo.staging):
        bootstrap_grant(demo.ops, "reviewer", demo.payments, extra_environment)
    for name, days in (("Year-end freeze", 3), ("Datacentre move", 2), ("Audit week", 1)):
        set_control(by=demo.sec, control="releases.freezewindow", name=name, starts_at=now, ends_at=now + timedelta(days=days), environments=[demo.production])
    large = pending_in_production(demo, now, contributors=[p.username for p in people[:10]])
    for _ in range(14):
        large = sign_off(demo, large, now)
        artifact = new_artifact()
        staged(demo, now, artifact)
        large = services.change_request_update(
            actor=demo.dev, change_request=large, changes={"artifact": artifact}, at=now
        )
    large = sign_off(demo, large, now)
    assert large.approvals.count() == 30
    assert ChangeRequest.objects.count() > 50

    for actor in (demo.ops, demo.rev, demo.dev):
        assert queries_to_decide(large.pk, actor, now) == measured[actor.username], actor.username


def test_the_count_does_not_depend_on_the_environment_having_a_prior_one(demo, now):
    """Staging has no prior environment to look up; production has: each is constant on its own."""
    small = pending_in_production(demo, now, stage=False)
    baseline = queries_to_decide(small.pk, demo.rev, now)
    crowd(demo, now, 5)
    larger = sign_off(demo, pending_in_production(demo, now), now)

    assert queries_to_decide(larger.pk, demo.rev, now) == baseline


@pytest.mark.parametrize("action", ACTIONS)
def test_the_engine_runs_no_query_given_a_loaded_context(demo, now, django_assert_num_queries, action):
    artifact = new_artifact()
    cr = sign_off(demo, pending_in_production(demo, now, artifact=artifact, contributors=["dev2"]), now)
    set_control(by=demo.sec, control="releases.freezewindow", name="Freeze", starts_at=now, ends_at=now + timedelta(hours=1), environments=[demo.production])
    ctx = policy_context(change_request_for_decision(cr.pk), demo.ops, at=now)

    with django_assert_num_queries(0):
        decision = evaluate(ctx, action, now + timedelta(hours=2), via="api")
        decision.as_dict()

    assert decision.requirements["approvals"] == {"required": 2, "valid": 2, "expired": 0}
