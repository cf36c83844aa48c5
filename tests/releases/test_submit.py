"""C1: only the author, still holding submit, sends a draft for review; it waits for approvals or,
where the policy is already met, is approved at once."""
import pytest

from governance import services as governance
from core.errors import Denied, InvalidState
from governance.models import RoleAssignment
from releases import services
from releases.models import ChangeRequest
from tests.releases.stories import draft, events_for, pending

S = ChangeRequest.State


def test_the_author_submits_a_draft_for_review(demo, now):
    cr = draft(demo, now, author=demo.dev, environment=demo.staging)

    cr = services.change_request_submit(actor=demo.dev, change_request=cr, at=now)

    assert cr.state == S.PENDING
    assert cr.submitted_at == now
    assert cr.approved_at is None
    assert events_for(cr)[-1].action == "change_request.submitted"


def test_where_the_policy_asks_for_no_approval_the_change_is_approved_on_submit(demo, now):
    """development's policy: min_approvals 0."""
    cr = pending(demo, now, environment=demo.development)

    assert cr.state == S.APPROVED
    assert cr.approved_at == now
    assert cr.approvals.count() == 0


def test_a_colleague_may_not_submit_someone_elses_draft(demo, now, nothing_written):
    cr = draft(demo, now, author=demo.dev)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_submit(actor=demo.dev2, change_request=cr, at=now)

    assert refused.value.codes == ["not_author"]


def test_a_reviewer_submitting_someone_elses_draft_hears_both_reasons(demo, now, nothing_written):
    cr = draft(demo, now, author=demo.dev)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_submit(actor=demo.rev, change_request=cr, at=now)

    assert refused.value.codes == ["missing_duty", "not_author"]


def test_an_author_who_lost_submit_may_not_submit_their_draft(demo, now, nothing_written):
    cr = draft(demo, now, author=demo.dev, environment=demo.staging)
    grant = RoleAssignment.objects.get(user=demo.dev, role__slug="developer", environment=demo.staging)
    governance.role_assignment_revoke(actor=demo.mgr, assignment=grant, reason="left the rota", at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_submit(actor=demo.dev, change_request=cr, at=now)

    assert refused.value.codes == ["missing_duty"]


def test_an_author_whose_grant_expired_may_not_submit(demo, now, nothing_written):
    """Production grants of the demo last 90 days; the check reads expires_at, not the expiry task's work."""
    cr = draft(demo, now, author=demo.dev, environment=demo.production)
    grant = RoleAssignment.objects.get(user=demo.dev, role__slug="developer", environment=demo.production)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_submit(actor=demo.dev, change_request=cr, at=grant.expires_at)

    assert refused.value.codes == ["missing_duty"]


def test_a_change_is_submitted_once(demo, now, nothing_written):
    cr = pending(demo, now)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        services.change_request_submit(actor=demo.dev, change_request=cr, at=now)

    assert refused.value.codes == ["invalid_state"]
    assert refused.value.status_code == 409
