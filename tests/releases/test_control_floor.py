"""Issue 14 class 9c, RULES.md K4: a production deployment always needs at least one independent
human approval — a person's (not ``via=auto``), by someone neither author nor ever a contributor —
whatever the policy says (``control_floor``)."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.contrib.auth import get_user_model

from governance import duties
from core.errors import Denied
from governance.models import Environment, Team
from releases import services
from releases.models import Approval, ApprovalPolicy, ChangeRequest
from releases.policy import PolicyContext, approval_status, evaluate
from releases.selectors import change_request_for_decision, policy_context
from tests.releases.stories import pending_in_production, reload

AT = datetime(2026, 3, 4, 12, 0, tzinfo=dt_timezone.utc)
User = get_user_model()
AUTHOR, CONTRIBUTOR, REV, OPS = (User(pk=pk, username=name) for pk, name in enumerate(
    ["author", "contributor", "rev", "ops"], start=1))
NO_APPROVAL_NEEDED = ApprovalPolicy(min_approvals=0)


def approved_change(tier):
    return ChangeRequest(pk=10, title="Retry", team=Team(pk=1, slug="payments"), author=AUTHOR, artifact="app@sha256:" + "1" * 64,
                         environment=Environment(pk=3, slug=tier, tier=tier, time_zone="UTC"), state="approved",
                         risk="low", change_type="normal", revision=1)


def approval(reviewer, via="portal"):
    return Approval(reviewer=reviewer, decision="approved", revision=1, via=via, is_team_member=True,
                    created_at=AT - timedelta(minutes=5))


def deploy_codes(tier, approvals):
    ctx = PolicyContext(change_request=approved_change(tier), policy=NO_APPROVAL_NEEDED,
                        contributor_ids=frozenset({CONTRIBUTOR.pk}), approvals=tuple(approvals), actor=OPS,
                        actor_duties=frozenset({duties.DEPLOY}), actor_is_team_member=True)
    return evaluate(ctx, "deploy", AT).codes


@pytest.mark.parametrize("approvals", [
    [],
    [approval(None, via="auto")],
    [approval(AUTHOR)],
    [approval(CONTRIBUTOR)],
], ids=["none", "the-policy-itself", "the-author", "a-contributor"])
def test_production_refuses_a_change_nobody_independent_approved(approvals):
    assert deploy_codes("production", approvals) == ["control_floor"]


def test_one_independent_person_meets_the_floor():
    assert deploy_codes("production", [approval(None, via="auto"), approval(REV)]) == []


def test_the_floor_is_production_s():
    assert deploy_codes("staging", []) == []


def test_a_production_policy_asking_nothing_still_waits_for_a_person(demo, now):
    # Below the configuration floor (control_floor refuses it at the control door): only data written
    # around the services, or older than the floor, holds such a policy; the engine's floor still stands.
    ApprovalPolicy.objects.filter(environment=demo.production).update(min_approvals=0, team_reviewer_required=False)

    cr = pending_in_production(demo, now)

    assert cr.state == "pending"
    status = approval_status(policy_context(change_request_for_decision(cr.pk), demo.ops, at=now), now)
    assert (status.policy_met, status.floor_met, status.met) == (True, False, False)
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)
    assert cr.state == "approved"


def test_a_change_approved_without_anyone_is_not_deployed(demo, now, nothing_written):
    """A production change marked approved with no approval at all — by data older than the floor,
    or written around the services — is refused at the door."""
    # Below the configuration floor (control_floor refuses it at the control door): only data written
    # around the services, or older than the floor, holds such a policy; the engine's floor still stands.
    ApprovalPolicy.objects.filter(environment=demo.production).update(min_approvals=0, team_reviewer_required=False)
    cr = pending_in_production(demo, now)
    ChangeRequest.objects.filter(pk=cr.pk).update(state="approved", approved_at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=reload(cr), at=now)

    assert refused.value.codes == ["control_floor"]
