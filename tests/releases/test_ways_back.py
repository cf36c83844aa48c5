"""No dead ends (issue 18): a reviewer asks for changes and the author revises and resubmits; the
author withdraws a change from review; an approved change whose approvals expired goes back for
review; a failed deployment is retried by an operator as a new attempt, under the checks of a
first deployment. Each move writes one audit event; each refusal writes nothing."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from audit import webhooks
from audit.models import AuditEvent, NotificationChannel, OutboxMessage
from core.errors import Denied, InvalidState
from releases import services, services_flow, states
from releases.models import Approval, ChangeRequest, Deployment
from tests.releases.stories import (
    approved_in_production,
    approved_in_staging,
    deploy,
    events_for,
    new_artifact,
    pending,
    pending_in_production,
    reload,
)

S = ChangeRequest.State


def ask_for_changes(demo, cr, at, reviewer=None):
    return services.change_request_request_changes(
        actor=reviewer or demo.rev, change_request=cr, comment="Add a back-out plan.", revision=cr.revision, at=at)


# --- request changes, revise, resubmit -----------------------------------------------------------


def test_a_reviewer_sends_a_change_back_and_the_author_revises_and_resubmits(demo, now):
    cr = pending(demo, now)

    cr = ask_for_changes(demo, cr, now)

    assert (cr.state, cr.revision, cr.closed_at) == (S.CHANGES_REQUESTED, 1, None)
    [decision] = cr.approvals.all()
    assert (decision.reviewer, decision.decision, decision.comment) == (demo.rev, "changes_requested",
                                                                        "Add a back-out plan.")
    assert events_for(cr)[-1].action == "change_request.changes_requested"
    assert events_for(cr)[-1].data["comment"] == "Add a back-out plan."

    cr = services.change_request_update(actor=demo.dev, change_request=cr, at=now + timedelta(minutes=5),
                                        changes={"backout_plan": "Redeploy the previous digest."})
    assert (cr.state, cr.revision) == (S.CHANGES_REQUESTED, 2)  # revised, not yet back in review
    assert reload(cr).approvals.get().stale

    cr = services.change_request_submit(actor=demo.dev, change_request=cr, at=now + timedelta(minutes=10))
    assert (cr.state, cr.revision) == (S.PENDING, 2)
    resubmitted = events_for(cr)[-1]
    assert (resubmitted.action, resubmitted.data["from_state"], resubmitted.data["resubmitted"]) == (
        "change_request.submitted", "changes_requested", True)

    # The reviewer who asked decides the new revision: it is approved.
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, revision=2, at=now + timedelta(hours=1))
    assert cr.state == S.APPROVED


def test_resubmitting_without_an_edit_is_a_new_revision_too(demo, now):
    """The old decisions go stale either way, so the reviewer may decide again."""
    cr = ask_for_changes(demo, pending(demo, now), now)

    cr = services.change_request_submit(actor=demo.dev, change_request=cr, at=now + timedelta(minutes=10))

    assert (cr.state, cr.revision) == (S.PENDING, 2)
    assert all(a.stale for a in cr.approvals.all())
    assert services.change_request_approve(actor=demo.rev, change_request=cr, revision=2,
                                           at=now + timedelta(hours=1)).state == S.APPROVED


def test_approvals_of_the_old_revision_go_stale(demo, now):
    """Production asks two sign-offs: rev approved r1, rev2 asked for changes; r2 needs two afresh."""
    cr = pending_in_production(demo, now)
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", revision=1, at=now)
    cr = ask_for_changes(demo, cr, now, reviewer=demo.rev2)
    cr = services.change_request_update(actor=demo.dev, change_request=cr, changes={"title": "Retry, revised"},
                                        at=now)
    cr = services.change_request_submit(actor=demo.dev, change_request=cr, at=now)

    assert [(a.reviewer.username, a.decision, a.stale) for a in cr.approvals.all()] == [
        ("rev", "approved", True), ("rev2", "changes_requested", True)]
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", revision=2, at=now)
    assert cr.state == S.PENDING  # rev's old approval no longer counts: one of two


def test_changes_requested_is_published_as_a_domain_webhook(demo, now):
    NotificationChannel.objects.create(name="ci", kind="webhook", target="http://127.0.0.1:9/hook",
                                       secret="s" * 32, events="change_request.changes_requested")
    ask_for_changes(demo, pending(demo, now), now)

    [message] = OutboxMessage.objects.filter(topic=webhooks.TOPIC)
    assert "change_request.changes_requested" in str(message.payload)


@pytest.mark.parametrize("who, code", [("dev", "author_cannot_approve"), ("dev2", "missing_duty"),
                                       ("ops", "missing_duty"), ("mgr", "missing_duty")])
def test_only_a_reviewer_who_may_decide_asks_for_changes(demo, now, nothing_written, who, code):
    cr = pending(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        ask_for_changes(demo, cr, now, reviewer=getattr(demo, who))

    assert code in refused.value.codes


def test_a_contributor_may_not_ask_for_changes(demo, now, nothing_written):
    from tests.factories import bootstrap_grant

    bootstrap_grant(demo.dev2, "reviewer", demo.payments, demo.staging)
    cr = pending(demo, now, contributors=["dev2"])

    with nothing_written(), pytest.raises(Denied) as refused:
        ask_for_changes(demo, cr, now, reviewer=demo.dev2)

    assert refused.value.codes == ["contributor_cannot_approve"]


def test_changes_are_asked_only_of_a_pending_change_and_with_a_comment(demo, now, nothing_written):
    approved = approved_in_staging(demo, now)
    with nothing_written(), pytest.raises(InvalidState):
        ask_for_changes(demo, approved, now, reviewer=demo.rev2)
    waiting = pending(demo, now)
    with nothing_written(), pytest.raises(ValidationError) as invalid:
        services.change_request_request_changes(actor=demo.rev, change_request=waiting, comment="  ", at=now)
    assert "comment" in invalid.value.message_dict


def test_a_change_sent_back_cannot_be_approved_or_deployed(demo, now, nothing_written):
    cr = ask_for_changes(demo, pending(demo, now), now)

    with nothing_written(), pytest.raises(InvalidState):
        services.change_request_approve(actor=demo.rev2, change_request=cr, at=now)
    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=now)
    assert "not_approved" in refused.value.codes


def test_only_the_author_resubmits_or_revises(demo, now, nothing_written):
    cr = ask_for_changes(demo, pending(demo, now), now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_submit(actor=demo.dev2, change_request=cr, at=now)
    assert "not_author" in refused.value.codes
    with nothing_written(), pytest.raises(Denied):
        services.change_request_update(actor=demo.dev2, change_request=cr, changes={"title": "Mine"}, at=now)


# --- withdraw ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sent_back", [False, True])
def test_the_author_withdraws_a_change_from_review_to_a_draft(demo, now, sent_back):
    cr = pending(demo, now)
    if sent_back:
        cr = ask_for_changes(demo, cr, now)

    cr = services_flow.change_request_withdraw(actor=demo.dev, change_request=cr, reason="Not yet.", at=now)

    assert (cr.state, cr.revision, cr.submitted_at) == (S.DRAFT, 2, None)
    assert all(a.stale for a in cr.approvals.all())
    event = events_for(cr)[-1]
    assert (event.action, event.data["to_state"], event.data["reason"]) == ("change_request.withdrawn", "draft",
                                                                            "Not yet.")
    # A draft again: edited without a new revision, submitted as new.
    cr = services.change_request_update(actor=demo.dev, change_request=cr, changes={"title": "Later"}, at=now)
    assert cr.revision == 2
    assert services.change_request_submit(actor=demo.dev, change_request=cr, at=now).state == S.PENDING


def test_an_approval_given_before_a_withdrawal_does_not_count_after_it(demo, now):
    cr = pending_in_production(demo, now)
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", revision=1, at=now)
    cr = services_flow.change_request_withdraw(actor=demo.dev, change_request=cr, at=now)
    cr = services.change_request_submit(actor=demo.dev, change_request=cr, at=now)

    cr = services.change_request_approve(actor=demo.rev2, change_request=cr, via="portal", revision=2, at=now)

    assert cr.state == S.PENDING


def test_only_the_author_withdraws_and_only_from_review(demo, now, nothing_written):
    cr = pending(demo, now)
    for who in (demo.dev2, demo.mgr, demo.rev):
        with nothing_written(), pytest.raises(Denied) as refused:
            services_flow.change_request_withdraw(actor=who, change_request=cr, at=now)
        assert refused.value.codes == ["not_author"]
    approved = approved_in_staging(demo, now)
    with nothing_written(), pytest.raises(InvalidState):
        services_flow.change_request_withdraw(actor=demo.dev, change_request=approved, at=now)


# --- re-review -----------------------------------------------------------------------------------


def test_an_approved_change_whose_approvals_expired_goes_back_for_review(demo, now):
    cr = approved_in_production(demo, now)
    later = now + timedelta(hours=73)
    with pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=later)
    assert refused.value.codes == ["approvals_expired"]

    cr = services_flow.change_request_re_review(actor=demo.dev, change_request=cr, comment="Still wanted.", at=later)

    assert (cr.state, cr.revision, cr.approved_at) == (S.PENDING, 2, None)
    event = events_for(cr)[-1]
    assert (event.action, event.data["from_state"], event.data["to_state"], event.data["expired_approvals"]) == (
        "change_request.re_review_requested", "approved", "pending", 2)
    # The same reviewers sign off again, and ops deploys.
    for reviewer in (demo.rev, demo.rev2):
        cr = services.change_request_approve(actor=reviewer, change_request=cr, via="portal", revision=2, at=later)
    assert cr.state == S.APPROVED
    assert services.deployment_start(actor=demo.ops, change_request=cr, at=later).revision == 2


def test_a_manager_of_the_team_may_send_it_back_too(demo, now):
    cr = approved_in_production(demo, now)

    cr = services_flow.change_request_re_review(actor=demo.mgr, change_request=cr, at=now + timedelta(hours=80))

    assert cr.state == S.PENDING


def test_re_review_is_refused_while_the_approvals_count(demo, now, nothing_written):
    cr = approved_in_production(demo, now)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        services_flow.change_request_re_review(actor=demo.dev, change_request=cr, at=now + timedelta(hours=1))

    assert refused.value.codes == ["approvals_not_expired"]


def test_re_review_is_for_the_author_or_a_manager_of_an_approved_change(demo, now, nothing_written):
    cr = approved_in_production(demo, now)
    later = now + timedelta(hours=80)
    for who in (demo.dev2, demo.rev, demo.ops):
        with nothing_written(), pytest.raises(Denied) as refused:
            services_flow.change_request_re_review(actor=who, change_request=cr, at=later)
        assert refused.value.codes == ["not_author"]
    waiting = pending(demo, now)
    with nothing_written(), pytest.raises(InvalidState):
        services_flow.change_request_re_review(actor=demo.dev, change_request=waiting, at=later)


# --- retry a failed deployment -------------------------------------------------------------------


def test_an_operator_retries_a_failed_deployment_as_a_new_attempt(demo, now):
    cr = approved_in_staging(demo, now)
    failed = deploy(demo, cr, now, outcome="failed")
    assert reload(cr).state == S.FAILED

    attempt = services.deployment_retry(actor=demo.ops, change_request=cr, at=now + timedelta(minutes=30),
                                        pipeline_url="https://ci.example.com/run/2")

    assert attempt.pk != failed.pk and attempt.state == Deployment.State.RUNNING
    assert Deployment.objects.get(pk=failed.pk).state == Deployment.State.FAILED  # stays on record
    assert (reload(cr).state, reload(cr).closed_at) == (S.DEPLOYING, None)
    event = events_for(cr)[-1]
    assert (event.action, event.data["from_state"], event.data["retry_of"], event.data["attempt"]) == (
        "deployment.started", "failed", failed.pk, 2)
    assert attempt.decision["action"] == "retry"
    services.deployment_finish(actor=demo.ops, deployment=attempt, outcome="succeeded", at=now + timedelta(hours=1))
    assert reload(cr).state == S.DEPLOYED


def test_the_production_change_held_back_by_a_failed_staging_deployment_then_proceeds(demo, now):
    artifact = new_artifact()
    production = pending(demo, now, environment=demo.production, artifact=artifact)
    for reviewer in (demo.rev, demo.rev2):
        production = services.change_request_approve(actor=reviewer, change_request=production, via="portal",
                                                      at=now)
    staging = approved_in_staging(demo, now, artifact=artifact)
    deploy(demo, staging, now, outcome="failed")
    with pytest.raises(Denied) as held:
        services.deployment_start(actor=demo.ops, change_request=production, at=now)
    assert held.value.codes == ["prior_environment_required"]

    retried = services.deployment_retry(actor=demo.ops, change_request=staging, at=now)
    services.deployment_finish(actor=demo.ops, deployment=retried, outcome="succeeded", at=now)

    assert services.deployment_start(actor=demo.ops, change_request=production, at=now).revision == 1


@pytest.mark.parametrize("who, code", [("dev", "author_cannot_deploy"), ("rev", "approver_cannot_deploy"),
                                       ("dev2", "missing_duty"), ("mgr", "missing_duty")])
def test_a_retry_keeps_the_separation_of_duties(demo, now, nothing_written, who, code):
    cr = approved_in_staging(demo, now)
    deploy(demo, cr, now, outcome="failed")

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_retry(actor=getattr(demo, who), change_request=cr, at=now)

    assert code in refused.value.codes


def test_a_retry_needs_approvals_that_still_count(demo, now, nothing_written):
    cr = approved_in_staging(demo, now)
    deploy(demo, cr, now, outcome="failed")

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_retry(actor=demo.ops, change_request=cr, at=now + timedelta(days=8))

    assert refused.value.codes == ["approvals_expired"]


def test_only_a_failed_change_is_retried(demo, now, nothing_written):
    approved = approved_in_staging(demo, now)
    with nothing_written(), pytest.raises(InvalidState):
        services.deployment_retry(actor=demo.ops, change_request=approved, at=now)
    deploy(demo, approved, now)
    with nothing_written(), pytest.raises(InvalidState):
        services.deployment_retry(actor=demo.ops, change_request=approved, at=now)


def test_the_state_table_has_a_way_on_from_every_state_but_the_final_ones():
    # The post-implementation review records a finding; it moves nothing.
    reachable_from = {state for action, (starts, _) in states.TRANSITIONS.items() if action != "review_pir"
                      for state in starts}
    assert set(S.values) - reachable_from == set(states.TERMINAL)
    assert S.FAILED not in states.TERMINAL and S.CHANGES_REQUESTED in states.OPEN


def test_every_move_wrote_one_event(demo, now):
    before = AuditEvent.objects.count()
    cr = ask_for_changes(demo, pending(demo, now), now)
    cr = services_flow.change_request_withdraw(actor=demo.dev, change_request=cr, at=now)

    assert [e.action for e in AuditEvent.objects.order_by("sequence")[before:]] == [
        "change_request.created", "change_request.submitted", "change_request.changes_requested",
        "change_request.withdrawn"]
    assert Approval.objects.filter(change_request=cr).count() == 1
