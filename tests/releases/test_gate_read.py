"""The gate reads a change through ``selectors.change_for_gate`` (statements built once in
``releases.reads``, the actor's facts as EXISTS in the change's own statement); the services read it through ``change_request_for_decision`` and
``policy_context``. Both must see the same changes (V1) and reach the same decision, for every
persona, change and action, including a contributor, a freeze window in force and a change whose
artifact has not reached the prior environment."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from releases.models import ChangeRequest
from releases.policy import evaluate
from releases.selectors import change_request_for_decision, change_requests_visible_to, change_for_gate, policy_context
from tests.releases.stories import approved_in_production, approved_in_staging, pending, pending_in_production
from tests.factories import set_control

pytestmark = pytest.mark.django_db


def stories(demo, now):
    approved_in_production(demo, now)
    pending_in_production(demo, now, contributors=["dev2"])
    pending_in_production(demo, now, stage=False)  # its artifact never reached staging (C8)
    approved_in_staging(demo, now)
    pending(demo, now, author=demo.dev2)


def decisions(actor, at):
    """{(change, action): (allowed, reason codes)} through the gate's read and the services' read."""
    gate, service = {}, {}
    for pk in ChangeRequest.objects.values_list("pk", flat=True):
        cr = change_for_gate(actor, pk, at=at)
        if cr is None:
            continue
        for action in ("approve", "deploy"):
            gate[cr.pk, action] = _answer(evaluate(policy_context(cr, actor, at=at, reuse=True), action, at))
    for pk in change_requests_visible_to(actor).values_list("pk", flat=True):
        cr = change_request_for_decision(pk)
        for action in ("approve", "deploy"):
            service[pk, action] = _answer(evaluate(policy_context(cr, actor, at=at), action, at))
    return gate, service


def _answer(decision):
    return decision.allowed, sorted(r.code for r in decision.reasons), decision.requirements


@pytest.mark.parametrize("frozen", [False, True], ids=["no-freeze", "production-frozen"])
def test_the_gate_and_the_services_see_the_same_changes_and_decide_alike(demo, now, frozen):
    stories(demo, now)
    if frozen:
        set_control(by=demo.sec, control="releases.freezewindow", name="Quarter close", starts_at=now, ends_at=now + timedelta(hours=4), environments=[demo.production])
    at = now + timedelta(minutes=30)
    every = []
    for actor in get_user_model().objects.order_by("username"):
        gate, service = decisions(actor, at)
        assert gate.keys() == service.keys(), actor.username
        for key in gate:
            assert gate[key] == service[key], (actor.username, key)
        every.extend(gate.values())
    compared = len(every)
    # Enough happened for the comparison to mean something: allowed and refused answers, a
    # contributor refused, a freeze refusing a deployment where one is in force.
    codes = {code for _, reasons, _ in every for code in reasons}
    assert compared >= 40
    assert any(allowed for allowed, _, _ in every) and not all(allowed for allowed, _, _ in every)
    assert "contributor_cannot_approve" in codes
    assert "prior_environment_required" in codes
    assert ("freeze_window_active" in codes) is frozen
    assert ChangeRequest.objects.count() > 5


def test_the_grants_shape_answers_as_the_orm_for_everyone_at_any_instant(demo, now):
    """``core.shapes``: the grants-in-force query compiled once answers as the queryset built afresh,
    before, inside and after a grant's lifetime and for a disabled account."""
    from datetime import datetime

    from core.shapes import Shape
    from governance import services as governance
    from governance.models import RoleAssignment
    from releases.selectors import _DUTIES_IN_FORCE

    governance.role_grant(actor=demo.mgr, user=demo.dev2, role=demo.roles["reviewer"], team=demo.payments,
                          environment=demo.staging, justification="Covers the staging rota", at=now,
                          expires_at=now + timedelta(days=2))
    type(demo.idev).objects.filter(pk=demo.idev.pk).update(is_active=False)
    compared = 0
    for at in (now - timedelta(days=1), now + timedelta(hours=1), now + timedelta(days=3)):
        for user in get_user_model().objects.all():
            orm = set(RoleAssignment.objects.in_force(at).filter(user_id=user.pk, role__duties__duty__isnull=False)
                      .order_by().values_list("environment_id", "role__duties__duty").distinct())
            assert set(_DUTIES_IN_FORCE.rows(user_id=user.pk, at=at)) == orm, (user.username, at)
            compared += len(orm)
    assert compared > 50
    never_used = Shape(lambda user_id, at: RoleAssignment.objects.filter(user_id=user_id).values_list("pk"),
                       user_id=int, at=datetime)
    with pytest.raises(ValueError, match="at does not reach"):
        never_used.rows(user_id=demo.dev.pk, at=now)
