"""Decisions that race: the services lock the change request they transition, so two people acting
at the same moment are serialised and the second one sees what the first did. Needs real
concurrent transactions: PostgreSQL, committed data, one connection per thread."""
from io import StringIO

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from core.errors import Denied, InvalidState
from releases import services
from releases.models import Approval, ChangeRequest, Deployment
from tests.factories import UserFactory, bootstrap_grant
from tests.releases.racing import at_the_same_moment
from tests.releases.stories import approved_in_production, events_for, new_artifact, pending_in_production

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def assert_audit_chain_intact():
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact" in out.getvalue()


def test_two_reviewers_signing_off_together_approve_the_change_once(demo, now):
    cr = pending_in_production(demo, now)

    outcomes = at_the_same_moment(
        *(lambda reviewer=reviewer: services.change_request_approve(
            actor=reviewer, change_request=cr, via="portal", at=now) for reviewer in (demo.rev, demo.rev2))
    )

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert sorted(Approval.objects.filter(change_request=cr).values_list("reviewer__username", flat=True)) == [
        "rev", "rev2"
    ]
    assert ChangeRequest.objects.get(pk=cr.pk).state == "approved"
    decisions = [e.action for e in events_for(cr) if e.action.startswith("change_request.approv")]
    assert sorted(decisions) == ["change_request.approval_recorded", "change_request.approved"]
    assert ChangeRequest.history.filter(id=cr.pk, state="approved").count() == 1
    assert_audit_chain_intact()


def test_one_reviewer_clicking_twice_counts_once(demo, now):
    cr = pending_in_production(demo, now)

    outcomes = at_the_same_moment(
        *(lambda: services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now),) * 2
    )

    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], Denied) and refused[0].codes == ["already_approved"]
    assert Approval.objects.filter(change_request=cr).count() == 1
    assert ChangeRequest.objects.get(pk=cr.pk).state == "pending"
    assert [e.action for e in events_for(cr)].count("change_request.approval_recorded") == 1
    assert_audit_chain_intact()


def test_two_operators_starting_together_deploy_once(demo, now):
    ops2 = UserFactory(username="ops2")
    bootstrap_grant(ops2, "operations", demo.payments, demo.production)
    cr = approved_in_production(demo, now)

    outcomes = at_the_same_moment(
        *(lambda operator=operator: services.deployment_start(actor=operator, change_request=cr, at=now)
          for operator in (demo.ops, ops2))
    )

    started = [o for o in outcomes if isinstance(o, Deployment)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(started) == 1 and len(refused) == 1, outcomes
    assert isinstance(refused[0], InvalidState)
    assert list(Deployment.objects.filter(change_request=cr).values_list("pk", flat=True)) == [started[0].pk]
    assert ChangeRequest.objects.get(pk=cr.pk).state == "deploying"
    assert [e.action for e in events_for(cr)].count("deployment.started") == 1
    assert_audit_chain_intact()


def test_an_approval_racing_a_rebuild_never_counts_for_the_new_artifact(demo, now):
    """dev pushes a new artifact while rev signs off: either rev saw revision 1 (now stale) or rev
    signed revision 2 knowingly. Never an approval of revision 1 that still counts."""
    cr = pending_in_production(demo, now)
    rebuilt = new_artifact()

    outcomes = at_the_same_moment(
        lambda: services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now),
        lambda: services.change_request_update(
            actor=demo.dev, change_request=cr, changes={"artifact": rebuilt}, at=now
        ),
    )

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    cr = ChangeRequest.objects.get(pk=cr.pk)
    assert (cr.revision, cr.artifact, cr.state) == (2, rebuilt, "pending")
    [approval] = Approval.objects.filter(change_request=cr)
    if approval.revision == 1:
        assert approval.stale and approval.artifact != rebuilt
    else:
        assert (approval.revision, approval.artifact, approval.stale) == (2, rebuilt, False)
    assert AuditEvent.objects.filter(action="change_request.revised", target_id=str(cr.pk)).count() == 1
    assert_audit_chain_intact()
