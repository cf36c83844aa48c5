"""C2 and C4: any eligible reviewer's rejection closes the request, over the API too."""
import pytest

from core.errors import Denied
from releases import services
from releases.models import Approval, ChangeRequest
from tests.releases.stories import events_for, pending, pending_in_production, reload

S = ChangeRequest.State


def test_one_rejection_closes_the_change(demo, now):
    cr = pending(demo, now, environment=demo.staging)

    cr = services.change_request_reject(actor=demo.rev, change_request=cr, comment="Needs a rollback plan.", at=now)

    assert cr.state == S.REJECTED
    assert (cr.closed_at, cr.close_reason) == (now, "Needs a rollback plan.")
    [decision] = cr.approvals.all()
    assert (decision.reviewer, decision.decision) == (demo.rev, Approval.Decision.REJECTED)
    [*_, event] = events_for(cr)
    assert (event.action, event.data["from_state"], event.data["to_state"]) == (
        "change_request.rejected", "pending", "rejected"
    )


def test_a_rejection_after_one_approval_still_closes_a_production_change(demo, now):
    cr = pending_in_production(demo, now)
    services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)

    cr = services.change_request_reject(actor=demo.rev2, change_request=cr, comment="Wrong artifact.", at=now)

    assert cr.state == S.REJECTED


def test_a_rejection_is_accepted_over_the_api_where_approvals_need_the_portal(demo, now):
    """C11 guards approvals only: stopping a change must never be harder than letting it through."""
    cr = pending_in_production(demo, now)

    cr = services.change_request_reject(actor=demo.rev, change_request=cr, via="api", comment="Not today.", at=now)

    assert cr.state == S.REJECTED


def test_whoever_has_approved_may_not_reject_the_same_revision(demo, now, nothing_written):
    cr = pending_in_production(demo, now)
    services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_reject(actor=demo.rev, change_request=cr, comment="Changed my mind.", at=now)

    assert refused.value.codes == ["already_approved"]
    assert reload(cr).state == S.PENDING


@pytest.mark.parametrize(
    "rejecter, contributors, codes",
    [
        ("dev", [], ["missing_duty", "author_cannot_approve"]),
        ("dev2", ["dev2"], ["missing_duty", "contributor_cannot_approve"]),
        ("rev2", ["rev2"], ["contributor_cannot_approve"]),
        ("ops", [], ["missing_duty"]),
        ("admin", [], ["missing_duty"]),
    ],
)
def test_the_rules_of_approving_hold_for_rejecting(demo, now, nothing_written, rejecter, contributors, codes):
    cr = pending(demo, now, author=demo.dev, contributors=contributors)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_reject(actor=getattr(demo, rejecter), change_request=cr, comment="No.", at=now)

    assert refused.value.codes == codes
