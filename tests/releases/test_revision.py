"""C3: an approval is bound to the revision and artifact it saw; a new artifact dismisses it."""
import pytest
from django.core.exceptions import ValidationError

from core.errors import Denied, InvalidState
from releases import services
from releases.models import ChangeRequest
from tests.releases.stories import (
    approved_in_production,
    approved_in_staging,
    draft,
    events_for,
    new_artifact,
    pending,
    pending_in_production,
    reload,
    staged,
)

S = ChangeRequest.State


def update(cr, at, actor=None, **changes):
    return services.change_request_update(actor=actor or cr.author, change_request=cr, changes=changes, at=at)


def test_a_new_artifact_on_an_approved_change_is_a_new_revision_back_in_review(demo, now):
    cr = approved_in_staging(demo, now)
    first_artifact = cr.artifact
    rebuilt = new_artifact()

    cr = update(cr, now, artifact=rebuilt)

    assert (cr.state, cr.revision, cr.artifact, cr.approved_at) == (S.PENDING, 2, rebuilt, None)
    [approval] = cr.approvals.all()
    assert approval.stale, "the approval stays in history, marked stale"
    assert (approval.revision, approval.artifact) == (1, first_artifact)
    [*_, event] = events_for(cr)
    assert event.action == "change_request.revised"
    assert (event.data["from_state"], event.data["to_state"], event.data["revision"]) == ("approved", "pending", 2)
    assert event.data["changed"] == ["artifact"]


def test_a_new_artifact_on_a_pending_change_dismisses_the_approvals_so_far(demo, now):
    cr = pending_in_production(demo, now)
    services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)

    cr = update(cr, now, artifact=new_artifact())

    assert (cr.state, cr.revision) == (S.PENDING, 2)
    assert [a.stale for a in cr.approvals.all()] == [True]


def test_the_approval_of_an_earlier_revision_no_longer_counts(demo, now):
    """rev approved revision 1; after the rebuild, rev2's approval alone is not enough for production."""
    artifact = new_artifact()
    cr = pending_in_production(demo, now, artifact=new_artifact())
    services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)
    staged(demo, now, artifact)
    cr = update(cr, now, artifact=artifact)

    cr = services.change_request_approve(actor=demo.rev2, change_request=cr, via="portal", at=now)
    assert cr.state == S.PENDING

    cr = services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)
    assert cr.state == S.APPROVED, "rev may approve the new revision: one person counts once per revision"
    assert [(a.reviewer.username, a.revision, a.stale) for a in cr.approvals.all()] == [
        ("rev", 1, True), ("rev2", 2, False), ("rev", 2, False)
    ]


def test_adding_a_contributor_is_a_new_revision_too(demo, now):
    """rev approved, then CI reports that rev wrote one of the commits: rev's approval must not count."""
    cr = approved_in_staging(demo, now)

    cr = update(cr, now, contributors=["rev"])

    assert (cr.state, cr.revision) == (S.PENDING, 2)
    with pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.rev, change_request=cr, at=now)
    assert refused.value.codes == ["contributor_cannot_approve"]


def test_editing_a_draft_is_not_a_new_revision(demo, now):
    """Nobody has reviewed a draft yet: its text changes in place."""
    cr = draft(demo, now)

    cr = update(cr, now, description="Adds a jittered backoff.", title="Retry with backoff")

    assert (cr.state, cr.revision, cr.title) == (S.DRAFT, 1, "Retry with backoff")
    assert events_for(cr)[-1].action == "change_request.updated"


def test_the_same_artifact_again_is_no_new_revision(demo, now):
    cr = approved_in_staging(demo, now)

    with pytest.raises(InvalidState):
        update(cr, now, artifact=f"  {cr.artifact} ")

    assert (reload(cr).state, reload(cr).revision) == (S.APPROVED, 1)


def test_a_draft_takes_a_new_artifact_without_a_new_revision(demo, now):
    cr = draft(demo, now)

    cr = update(cr, now, artifact=new_artifact())

    assert (cr.state, cr.revision) == (S.DRAFT, 1)


def test_a_revised_auto_approvable_change_is_approved_again_by_the_policy(demo, now):
    """C9 applies to every revision: a standard, low-risk staging change rebuilt is re-approved."""
    cr = pending(demo, now, environment=demo.staging, change_type="standard", risk="low")
    assert cr.state == S.APPROVED

    cr = update(cr, now, artifact=new_artifact())

    assert (cr.state, cr.revision) == (S.APPROVED, 2)
    assert [(a.revision, a.via, a.stale) for a in cr.approvals.all()] == [(1, "auto", True), (2, "auto", False)]
    [*_, event] = events_for(cr)
    assert (event.data["from_state"], event.data["to_state"]) == ("approved", "approved")


def test_a_revised_change_where_no_approval_is_needed_is_approved_again(demo, now):
    """development's policy asks for none: a rebuild must not leave the change pending for ever."""
    cr = pending(demo, now, environment=demo.development)

    cr = update(cr, now, artifact=new_artifact())

    assert (cr.state, cr.revision) == (S.APPROVED, 2)


def test_only_the_author_edits_a_change(demo, now, nothing_written):
    cr = approved_in_staging(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        update(cr, now, actor=demo.dev2, artifact=new_artifact())

    assert refused.value.codes == ["not_author"]


def test_a_reviewer_may_not_swap_the_artifact(demo, now, nothing_written):
    cr = approved_in_staging(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        update(cr, now, actor=demo.rev, artifact=new_artifact())

    assert refused.value.codes == ["not_author", "missing_duty"]


@pytest.mark.parametrize("outcome", ["deploying", "deployed", "rejected"])
def test_a_change_past_approval_takes_no_new_artifact(demo, now, nothing_written, outcome):
    cr = approved_in_staging(demo, now)
    if outcome == "rejected":
        cr = pending(demo, now)
        services.change_request_reject(actor=demo.rev, change_request=cr, comment="No.", at=now)
    else:
        deployment = services.deployment_start(actor=demo.ops, change_request=cr, at=now)
        if outcome == "deployed":
            services.deployment_finish(actor=demo.ops, deployment=deployment, outcome="succeeded", at=now)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        update(reload(cr), now, artifact=new_artifact())

    assert refused.value.status_code == 409


def test_fields_outside_the_editable_ones_are_refused(demo, now, nothing_written):
    cr = pending(demo, now)

    with nothing_written(), pytest.raises(ValidationError) as refused:
        update(cr, now, state="approved", risk="low")

    assert set(refused.value.message_dict) == {"state", "risk"}


def test_a_production_change_rebuilt_needs_both_sign_offs_again(demo, now):
    cr = approved_in_production(demo, now)

    cr = update(cr, now, artifact=new_artifact())

    assert cr.state == S.PENDING
    assert [a.stale for a in cr.approvals.all()] == [True, True]
