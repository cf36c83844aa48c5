"""Issue 14 class 4, G5 for decisions in flight: a revocation that commits while an approval, a
rejection, a deployment or a post-implementation review is being decided takes effect for it.

The decision starts after the revoking transaction has revoked the grant and before it commits —
the window in which the decision used to read the grant as active and commit after the revocation.
The revoking transaction commits only once the decision is waiting on one of its locks. With the
actor's user row locked first (``governance.services.lock_user``, shared with the grant services),
the decision waits before it reads the actor's grants, and then reads the revocation.
PostgreSQL, one connection per thread, committed data."""
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from audit.models import AuditEvent
from governance import services as governance_services
from core.errors import Denied
from governance.models import RoleAssignment
from releases import services
from releases.models import Approval, ChangeRequest, Deployment
from tests.releases.racing import backend_pid, in_threads, wait_until_blocked
from tests.releases.stories import approved_in_production, deploy, pending_in_production

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def grant_of(user, role, environment):
    return RoleAssignment.objects.get(user=user, role__slug=role, environment=environment,
                                      status=RoleAssignment.Status.ACTIVE)


def approving(demo, now):
    cr = pending_in_production(demo, now)
    return demo.rev, grant_of(demo.rev, "reviewer", demo.production), lambda: services.change_request_approve(
        actor=demo.rev, change_request=cr, via="portal", revision=cr.revision, at=now)


def rejecting(demo, now):
    cr = pending_in_production(demo, now)
    return demo.rev, grant_of(demo.rev, "reviewer", demo.production), lambda: services.change_request_reject(
        actor=demo.rev, change_request=cr, via="portal", comment="No.", revision=cr.revision, at=now)


def deploying(demo, now):
    cr = approved_in_production(demo, now)
    return demo.ops, grant_of(demo.ops, "operations", demo.production), lambda: services.deployment_start(
        actor=demo.ops, change_request=cr, at=now)


def reviewing(demo, now):
    cr = pending_in_production(demo, now, change_type="emergency")
    cr = services.change_request_approve(actor=demo.sec, change_request=cr, via="portal", at=now)
    deploy(demo, cr, now)
    return demo.rev, grant_of(demo.rev, "reviewer", demo.production), lambda: services.change_request_review_pir(
        actor=demo.rev, change_request=cr, notes="Fine.", at=now + timedelta(hours=1))


@pytest.mark.parametrize("decision", [approving, rejecting, deploying, reviewing],
                         ids=["approve", "reject", "deploy", "review"])
def test_a_revocation_committed_during_a_decision_stops_it(demo, now, decision):
    actor, grant, decide = decision(demo, now)
    events_before = AuditEvent.objects.count()
    written_before = (Approval.objects.count(), Deployment.objects.count(),
                      ChangeRequest.objects.filter(pir_at__isnull=False).count())
    revoked, ready, decided = threading.Event(), threading.Event(), threading.Event()
    decider = []

    def revoke():
        with transaction.atomic():
            governance_services.role_assignment_revoke(actor=demo.mgr, assignment=grant, reason="Moved to sales.",
                                                       at=now)
            revoked.set()
            assert ready.wait(timeout=20)
            wait_until_blocked(decider[0], decided, f"{actor.username}'s decision to wait on the revocation")
        return "revoked"

    def in_flight():
        decider.append(backend_pid())
        ready.set()
        assert revoked.wait(timeout=20)
        try:
            return decide()
        finally:
            decided.set()

    outcome, revocation = in_threads(in_flight, revoke)

    assert revocation == "revoked"
    assert isinstance(outcome, Denied), f"{actor.username} decided under a revoked grant: {outcome!r}"
    assert outcome.codes == ["missing_duty"]
    assert (Approval.objects.count(), Deployment.objects.count(),
            ChangeRequest.objects.filter(pir_at__isnull=False).count()) == written_before
    assert list(AuditEvent.objects.filter(sequence__gt=events_before).values_list("action", flat=True)) == [
        "role.revoked"]
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact" in out.getvalue()


def test_deciding_a_change_and_a_grant_at_once_does_not_deadlock(demo, now, monkeypatch):
    """The lock order (docs/architecture.md): sec approves a change (sec's own row, then the change,
    then the chain head) while sec approves a pending grant (the grantee's row, the grant, the chain
    head, then the audit event naming sec). The user lock is FOR NO KEY UPDATE, so the event's
    foreign-key check on sec's row does not wait for it while holding the chain head."""
    cr = pending_in_production(demo, now)
    pending_grant = governance_services.role_grant(
        actor=demo.mgr, user=demo.dev2, role=demo.roles["reviewer"], team=demo.payments,
        environment=demo.production, justification="Covers rev's holiday.", expires_at=now + timedelta(days=10))
    named, locked, granted = threading.Event(), threading.Event(), threading.Event()
    granter = []
    original = services.decision_read

    def pausing_decision_read(*args, **kwargs):
        read = original(*args, **kwargs)  # takes the change's row lock
        if not locked.is_set():  # the change's decision holds sec's row and the change now
            assert named.wait(timeout=20), "the grant's thread names its backend"
            locked.set()
            wait_until_blocked(granter[0], granted, "the grant's approval to block or finish")
        return read

    monkeypatch.setattr(services, "decision_read", pausing_decision_read)

    def approve_change():
        return services.change_request_approve(actor=demo.sec, change_request=cr, via="portal",
                                               revision=cr.revision, at=now)

    def approve_grant():
        granter.append(backend_pid())
        named.set()
        assert locked.wait(timeout=20)
        try:
            return governance_services.role_assignment_approve(actor=demo.sec, assignment=pending_grant)
        finally:
            granted.set()

    decided, approved = in_threads(approve_change, approve_grant)

    assert isinstance(decided, ChangeRequest), decided
    assert isinstance(approved, RoleAssignment) and approved.status == RoleAssignment.Status.ACTIVE, approved
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact" in out.getvalue()


def test_one_persons_decisions_run_side_by_side_and_a_revocation_still_waits_for_them(demo, now):
    """Issue 21: the releases services lock their actor's row shared (``lock_user(shared=True)``).
    While one decision of ops's is in flight, ops's next deployment goes through without waiting
    (a CI account deploying many changes at once); a revocation of ops's grant waits for the
    decision in flight, and so takes effect for every decision that reads the grants after it."""
    cr = approved_in_production(demo, now)
    grant = grant_of(demo.ops, "operations", demo.production)
    holding, deployed, revoked = threading.Event(), threading.Event(), threading.Event()
    revoker = []

    def decision_in_flight():
        with transaction.atomic():
            governance_services.lock_user(demo.ops, shared=True)
            holding.set()
            side_by_side = deployed.wait(timeout=15)
            wait_until_blocked(revoker[0], revoked, "the revocation to wait on the decision in flight")
            return side_by_side, not revoked.is_set()

    def next_deployment():
        assert holding.wait(timeout=20)
        try:
            return services.deployment_start(actor=demo.ops, change_request=cr, at=now)
        finally:
            deployed.set()

    def revoke():
        revoker.append(backend_pid())
        assert deployed.wait(timeout=30)
        try:
            return governance_services.role_assignment_revoke(actor=demo.mgr, assignment=grant,
                                                              reason="Moved to sales.", at=now)
        finally:
            revoked.set()

    (side_by_side, revocation_waited), deployment, revocation = in_threads(decision_in_flight, next_deployment, revoke)

    assert isinstance(deployment, Deployment), deployment
    assert side_by_side, "ops's second decision waited for the first"
    assert revocation_waited, "the revocation did not wait for ops's decision in flight"
    assert not isinstance(revocation, BaseException), revocation
    assert RoleAssignment.objects.get(pk=grant.pk).status == RoleAssignment.Status.REVOKED
