"""The pure engine on hand-built contexts: every reason that applies is reported, in one answer,
and the requirements say how far a change has got. No database is touched."""
from datetime import datetime, time, timedelta, timezone as dt_timezone

import pytest
from django.contrib.auth import get_user_model

from governance import duties
from governance.models import Environment, Team
from releases.models import Approval, ApprovalPolicy, ChangeRequest, FreezeWindow
from releases.policy import PolicyContext, approval_status, evaluate

AT = datetime(2026, 3, 4, 12, 0, tzinfo=dt_timezone.utc)  # a Wednesday
User = get_user_model()
AUTHOR, CONTRIBUTOR, REV, REV2, SEC, OPS = (User(pk=pk, username=name) for pk, name in enumerate(
    ["author", "contributor", "rev", "rev2", "sec", "ops"], start=1))


def change(**fields):
    defaults = dict(pk=10, title="Retry", team=Team(pk=1, slug="payments"), author=AUTHOR, artifact="app:1",
                    environment=Environment(pk=3, slug="production", time_zone="UTC"), state="approved",
                    risk="medium", change_type="normal", revision=1)
    return ChangeRequest(**{**defaults, **fields})


def approval(reviewer, *, hours_ago=1, revision=1, security=False, team=True, via="portal", stale=False,
             on_call=False):
    return Approval(reviewer=reviewer, decision="approved", revision=revision, via=via, is_security=security,
                    is_team_member=team, is_on_call=on_call, stale=stale, created_at=AT - timedelta(hours=hours_ago))


def context(cr, actor, actor_duties=(), approvals=(), policy=None, **extra):
    return PolicyContext(
        change_request=cr, policy=policy or ApprovalPolicy(min_approvals=2, team_reviewer_required=True,
                                                           high_risk_security_approvals=1, approval_ttl_hours=72),
        contributor_ids=frozenset({CONTRIBUTOR.pk}), approvals=tuple(approvals), actor=actor,
        actor_duties=frozenset(actor_duties), actor_is_team_member=True, **extra,
    )


def test_every_reason_against_a_deployment_is_reported_at_once():
    """The author tries to deploy, without deploy, during a freeze, at night, before staging."""
    policy = ApprovalPolicy(min_approvals=2, deploy_window_start=time(9), deploy_window_end=time(17))
    ctx = context(
        change(), AUTHOR, {duties.SUBMIT}, [approval(REV), approval(REV2)], policy=policy,
        active_freezes=(FreezeWindow(name="Year-end", starts_at=AT, ends_at=AT + timedelta(days=1)),),
        prior_environment_slug="staging", prior_environment_deployed=False,
    )

    decision = evaluate(ctx, "deploy", AT.replace(hour=22))

    assert not decision.allowed
    assert decision.codes == [
        "missing_duty", "author_cannot_deploy", "freeze_window_active", "outside_deploy_window",
        "prior_environment_required",
    ]
    assert decision.as_dict()["reasons"][0] == {
        "code": "missing_duty", "message": "You do not hold deploy for production."
    }


def test_a_clean_deployment_is_allowed_with_its_requirements():
    ctx = context(change(), OPS, {duties.DEPLOY}, [approval(REV), approval(REV2)],
                  prior_environment_slug="staging", prior_environment_deployed=True)

    decision = evaluate(ctx, "deploy", AT)

    assert decision.allowed and decision.reasons == ()
    assert decision.requirements == {
        "approvals": {"required": 2, "valid": 2, "expired": 0},
        "security_approvals": {"required": 0, "valid": 0},
        "team_reviewer": {"required": True, "present": True},
        "independent_approval": {"required": False, "present": True},
        "standard_template": None,
        "approval_ttl_hours": 72,
        "approvals_met": True,
        "interactive_signoff_required": False,
        "freeze_windows": [],
        "in_deploy_window": True,
        "prior_environment": {"environment": "staging", "deployed": True},
    }


def test_approvals_expire_at_the_ttl():
    ctx = context(change(), OPS, {duties.DEPLOY}, [approval(REV, hours_ago=10), approval(REV2, hours_ago=72)])

    status = approval_status(ctx, AT)

    assert (status.count, len(status.expired), status.met) == (1, 1, False)
    assert evaluate(ctx, "deploy", AT).codes == ["approvals_expired"]


def test_stale_and_other_revisions_do_not_count():
    cr = change(revision=2)
    ctx = context(cr, OPS, {duties.DEPLOY}, [approval(REV, revision=1), approval(REV2, revision=2),
                                              approval(SEC, revision=2, stale=True)])

    assert [a.reviewer for a in approval_status(ctx, AT).valid] == [REV2]


def test_high_risk_needs_the_security_approval_and_the_team_reviewer():
    cr = change(risk="high", state="pending")
    outsiders = [approval(REV, team=False), approval(SEC, security=True, team=False)]
    assert not approval_status(context(cr, OPS, approvals=outsiders), AT).met, "no team reviewer"
    no_security = [approval(REV), approval(REV2)]
    assert not approval_status(context(cr, OPS, approvals=no_security), AT).met, "no security approval"
    team_and_security = [approval(REV), approval(SEC, security=True, team=False)]
    assert approval_status(context(cr, OPS, approvals=team_and_security), AT).met


def test_an_emergency_needs_the_emergency_minimum_confirmed_by_on_call_or_security():
    """C10: the policy asks two approvals, one of an emergency; the one counts only when an on-call
    reviewer or security gives it."""
    cr = change(change_type="emergency", state="pending")
    for confirmed in (approval(REV, on_call=True), approval(SEC, security=True)):
        status = approval_status(context(cr, OPS, approvals=[confirmed]), AT)
        assert (status.required, status.met) == (1, True)
    unconfirmed = approval_status(context(cr, OPS, approvals=[approval(REV)]), AT)
    assert (unconfirmed.required, unconfirmed.met) == (2, False)
    assert approval_status(context(cr, OPS, approvals=[approval(REV), approval(REV2)]), AT).met


@pytest.mark.parametrize(
    "actor, actor_duties, approvals, via, codes",
    [
        (REV, {duties.APPROVE}, [], "portal", []),
        (AUTHOR, {duties.SUBMIT}, [], "api", ["missing_duty", "author_cannot_approve", "interactive_signoff_required"]),
        (CONTRIBUTOR, {duties.APPROVE}, [], "portal", ["contributor_cannot_approve"]),
        (REV, {duties.APPROVE}, [approval(REV)], "portal", ["already_approved"]),
        (SEC, {duties.SECURITY_APPROVE}, [], "portal", []),
        (OPS, {duties.DEPLOY}, [], "portal", ["missing_duty"]),
    ],
)
def test_who_may_approve(actor, actor_duties, approvals, via, codes):
    policy = ApprovalPolicy(min_approvals=2, require_interactive_signoff=True)
    ctx = context(change(state="pending"), actor, actor_duties, approvals, policy=policy)

    assert evaluate(ctx, "approve", AT, via=via).codes == codes


def test_deciding_a_change_that_is_not_pending_names_the_state():
    ctx = context(change(state="approved"), REV, {duties.APPROVE})

    decision = evaluate(ctx, "reject", AT)

    assert decision.codes == ["invalid_state"]
    assert "approved change request cannot be rejected" in decision.reasons[0].message


def test_unknown_actions_are_a_programming_error():
    with pytest.raises(ValueError):
        evaluate(context(change(), REV), "merge", AT)
