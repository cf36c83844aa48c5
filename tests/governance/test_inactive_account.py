"""One answer for a disabled account (docs/rules.md, "Grants in force"): its grants are in force
nowhere — duty checks, holder lists, guardian permissions, the portal, the API, the gate — while
access reviews still review them and the evidence reports them as leavers' open grants."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from audit.models import EvidenceExport
from compliance.evidence import builder, services as evidence_services
from governance import duties, selectors, services
from governance.access_reviews import campaigns
from governance.models import RoleAssignment
from governance.permissions import expected_permissions
from releases import selectors as release_selectors
from releases.policy import evaluate
from tests.api_releases.shortcuts import change_url, pending
from tests.evidence.conftest import Bundle
from tests.factories import UserFactory, member


def disable(user):
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    user.refresh_from_db()
    return user


@pytest.fixture
def story(demo, api_as):
    change = pending(demo, demo.dev, demo.production)
    client = api_as(demo.rev)  # a key made while the account was enabled
    disable(demo.rev)
    return change, client


def test_a_disabled_accounts_grants_are_standing_but_not_in_force(demo, story):
    assert RoleAssignment.objects.standing().filter(user=demo.rev).exists()
    assert not RoleAssignment.objects.in_force().filter(user=demo.rev).exists()


def test_no_duty_check_or_holder_list_counts_them(demo, story):
    rev, prod = demo.rev, demo.production
    assert not selectors.has_duty(rev, duties.APPROVE, environment=prod)
    assert not selectors.has_duty_everywhere(rev, duties.APPROVE)
    assert selectors.effective_duties(rev) == []
    assert rev not in selectors.duty_holders(duties.APPROVE, environment=prod)
    assert not selectors.duty_assignments(duties.APPROVE, environment=prod).filter(user=rev).exists()
    assert expected_permissions(rev) == (set(), set())


def test_the_portal_and_the_gate_count_them_nowhere(demo, story):
    change, _ = story
    rev, at = demo.rev, timezone.now()
    assert list(release_selectors.grants_in_force(rev, at=at)) == []
    assert release_selectors.actor_duties(rev, demo.production, at=at) == frozenset()
    assert not release_selectors.change_requests_awaiting_review(rev, at=at).exists()
    assert not release_selectors.deploy_queue(rev, at=at)
    change = release_selectors.change_request_for_decision(change.pk)
    decision = evaluate(release_selectors.policy_context(change, rev, at=at), "approve", at)
    assert not decision.allowed and "missing_duty" in [r.code for r in decision.reasons]


def test_the_api_does_not_let_the_account_in(demo, story):
    change, client = story
    assert client.get(change_url(change, "gate"), {"action": "approve"}).status_code in (401, 403)
    assert client.post(change_url(change, "approve"), {}, format="json").status_code in (401, 403)


def test_access_reviews_still_review_them_recommending_revocation(demo, story):
    at = timezone.now()
    batch = [a for b in campaigns.grants_in_batches(team_id=None, after_id=0, at=at) for a in b]
    grants = [a for a in batch if a.user_id == demo.rev.pk]
    assert grants
    ctx = campaigns.load_context(at)
    assert all("inactive_user" in [r["code"] for r in campaigns.recommendations(ctx, a)] for a in grants)


def test_the_evidence_reports_them_as_a_leavers_open_grant_not_as_a_duty(demo, settings, tmp_path):
    """The bundle's population: the grant is listed (role_grants, with its grantee disabled) and
    the leavers dataset names it, open, as a finding."""
    settings.EVIDENCE_ROOT = tmp_path / "evidence"
    settings.SIGNING_KEY_FILE = tmp_path / "keys" / "signing_key.pem"
    settings.SIGNING_KEY_AUTOGENERATE = True
    today = timezone.now().date()
    at = timezone.now() - timedelta(days=5)
    leaver = UserFactory(username="leaver")
    member(leaver, demo.payments)
    grant = services.role_assignment_bootstrap(
        user=leaver, role=demo.roles["reviewer"], team=demo.payments, environment=demo.staging,
        justification="covering", expires_at=at + timedelta(days=60), source="tests", at=at)
    disable(leaver)
    export = evidence_services.export_request(actor=demo.auditor, framework="sox",
                                              period_start=today - timedelta(days=6), period_end=today - timedelta(days=1))
    assert builder.build(export.pk) == EvidenceExport.Status.DONE
    bundle = Bundle(EvidenceExport.objects.get(pk=export.pk))
    leavers = [r for r in bundle.json_rows("leavers") if r["grant_id"] == grant.pk]
    assert [r["findings"] for r in leavers] == [["grant_not_ended"]]
    assert not RoleAssignment.objects.in_force().filter(pk=grant.pk).exists()
