"""The benchmark generator at ``small``: the counts it promises, a chain that verifies, and rows the
services could have written (SoD holds, grants match guardian, the bench queue really works)."""
import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Q
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from audit.chain import verify
from audit import merkle, tree
from audit.models import AuditEvent, ChainHead, MerkleNode
from bench.seed import PERSONAS, SCALES, BenchDataExists, bench_fixtures, seed
from governance import duties
from governance.models import ApiToken, Environment, RoleAssignment, Team
from governance.permissions import drift
from releases import services
from releases.models import Approval, ChangeRequest, Deployment

SMALL = SCALES["small"]
S = ChangeRequest.State
WENT_OUT = (S.DEPLOYED, S.FAILED, S.ROLLED_BACK)


def test_small_has_the_promised_counts(seeded_small, db):
    personas = len(PERSONAS)
    assert get_user_model().objects.count() == SMALL["users"] + personas
    assert Team.objects.count() == SMALL["teams"] + 1
    assert Environment.objects.count() == SMALL["environments"] + 1
    assert RoleAssignment.objects.count() == SMALL["role_assignments"] + personas - 1
    queue = SMALL["queue_pending"] + SMALL["queue_approved"] + 1
    assert ChangeRequest.objects.count() == SMALL["change_requests"] + queue
    assert Deployment.objects.count() == SMALL["deployments"]
    assert Approval.objects.count() == SMALL["approvals"]
    assert AuditEvent.objects.count() == SMALL["audit_events"]
    assert seeded_small["AuditEvent"] == SMALL["audit_events"] and seeded_small["ChangeRequest"] == SMALL["change_requests"] + queue
    # Most grants are in force, and every state of a change request occurs.
    assert RoleAssignment.objects.in_force().count() > SMALL["role_assignments"] // 2
    assert set(ChangeRequest.objects.values_list("state", flat=True).distinct()) == {
        S.DRAFT, S.PENDING, S.APPROVED, S.REJECTED, S.CANCELLED, S.DEPLOYED, S.FAILED, S.ROLLED_BACK}


def test_chain_verifies_and_the_head_is_the_last_event(seeded_small, db):
    checked, broken = verify()
    assert broken is None and checked == SMALL["audit_events"]
    last = AuditEvent.objects.order_by("-sequence").first()
    head = ChainHead.objects.get(pk=1)
    assert (head.sequence, head.hash) == (last.sequence, last.hash) == (SMALL["audit_events"], seeded_small["chain_head"])
    # The bench writes the Merkle tree as the append path would: the same nodes a rebuild computes.
    assert head.tree_size == head.sequence
    written = dict(MerkleNode.objects.values_list("position", "hash"))
    compact = merkle.CompactRange(head.tree_size, [bytes.fromhex(h) for h in head.compact_range])
    with transaction.atomic():
        tree.rebuild()
        assert dict(MerkleNode.objects.values_list("position", "hash")) == written
        assert tree.root(head.tree_size) == compact.root()
        transaction.set_rollback(True)
    # Time runs forward along the chain, over about two years, inside working hours.
    times = list(AuditEvent.objects.order_by("sequence").values_list("created_at", flat=True))
    assert times == sorted(times)
    assert (times[-1] - times[0]).days > 700 and times[-1] < timezone.now()
    # Every change request and deployment has its events.
    assert AuditEvent.objects.filter(action="change_request.created").count() == ChangeRequest.objects.count()
    assert AuditEvent.objects.filter(action="deployment.started").count() == SMALL["deployments"]


def test_separation_of_duties_holds_over_every_row(seeded_small, db):
    assert not Approval.objects.filter(reviewer_id=F("change_request__author_id")).exists()
    approved_it = Approval.objects.filter(change_request_id=OuterRef("change_request_id"), reviewer_id=OuterRef("deployer_id"))
    assert not Deployment.objects.filter(Q(deployer_id=F("change_request__author_id")) | Exists(approved_it)).exists()
    # One person counts once per revision.
    assert not Approval.objects.values("change_request", "revision", "reviewer").annotate(n=Count("id")).filter(n__gt=1).exists()
    # Whatever went out met its policy with the approvals of its current revision.
    current = Q(approvals__revision=F("revision"), approvals__stale=False, approvals__decision="approved")
    went_out = ChangeRequest.objects.filter(state__in=WENT_OUT + (S.APPROVED,)).annotate(
        n=Count("approvals", filter=current), sec=Count("approvals", filter=current & Q(approvals__is_security=True))
    ).select_related("environment__approval_policy")
    assert went_out.count() >= SMALL["deployments"]
    for cr in went_out:
        policy = cr.environment.approval_policy
        assert cr.n >= policy.min_approvals and cr.sec >= policy.min_security_approvals, cr.pk
    assert not Deployment.objects.exclude(artifact=F("change_request__artifact")).exists()
    assert Approval.objects.filter(stale=True).exists()
    # No one holds submit or approve together with deploy for one production environment (G3).
    active = RoleAssignment.objects.in_force().filter(environment__tier="production")
    deployers = set(active.filter(role__duties__duty=duties.DEPLOY).values_list("user_id", "environment_id"))
    writers = set(active.filter(role__duties__duty__in=[duties.SUBMIT, duties.APPROVE]).values_list("user_id", "environment_id"))
    assert deployers and writers and not deployers & writers
    # Privileged grants in force: four eyes and at most 90 days.
    for g in RoleAssignment.objects.in_force().filter(Q(environment__tier="production") | Q(role__slug__in=["security", "manager"])):
        assert g.approved_by_id not in (None, g.user_id, g.requested_by_id), g.pk
        assert g.expires_at - g.created_at <= timezone.timedelta(days=90), g.pk


def test_guardian_permissions_match_the_grants(seeded_small, db):
    for user in get_user_model().objects.all():
        assert drift(user) == {"unexplained": set(), "missing": set()}, user.username


def test_bench_personas_can_approve_and_deploy_through_the_services(seeded_small, db):
    fixtures = bench_fixtures()
    assert len(fixtures["pending"]) == SMALL["queue_pending"] and len(fixtures["approved"]) == SMALL["queue_approved"]
    users = {u.username: u for u in get_user_model().objects.filter(pk__in=fixtures["users"].values())}
    assert users["bench-rev"].check_password(fixtures["password"])
    assert ApiToken.objects.filter(user=users["bench-ops"]).get().is_usable()
    for reviewer, pk in zip(["bench-rev", "bench-rev2", "bench-sec"], fixtures["pending"][:3], strict=True):
        cr = services.change_request_approve(actor=users[reviewer], change_request=ChangeRequest.objects.get(pk=pk))
        assert cr.state == S.APPROVED
        deployment = services.deployment_start(actor=users["bench-ops"], change_request=cr)
        services.deployment_finish(actor=users["bench-ops"], deployment=deployment, outcome="succeeded")
    gate = services.deployment_start(actor=users["bench-ops"], change_request=ChangeRequest.objects.get(pk=fixtures["approved"][0]))
    assert gate.state == "running"
    checked, broken = verify()
    assert broken is None and checked > SMALL["audit_events"]
    # One event per service call, plus off-hours alerts when the suite runs off hours; no new-IP alert.
    recorded = AuditEvent.objects.filter(sequence__gt=SMALL["audit_events"])
    assert recorded.exclude(action="alert.raised").count() == 10
    assert not recorded.filter(action="alert.raised", data__kind="new_ip").exists()


def test_the_gate_ready_change_passes_the_gate_for_bench_ops_with_its_token(seeded_small, db):
    fixtures = bench_fixtures()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {fixtures['tokens']['bench-ops']}")
    response = client.get(f"/api/v1/change-requests/{fixtures['gate_ready']}/gate/", {"action": "deploy"})
    assert response.status_code == 200, response.content
    assert response.json()["allowed"] is True


def test_seeding_twice_is_refused(seeded_small, db):
    with pytest.raises(BenchDataExists):
        seed("small")


def test_an_unknown_scale_is_refused(db):
    with pytest.raises(ValueError):
        seed("huge")
