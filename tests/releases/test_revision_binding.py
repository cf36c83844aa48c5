"""C3, issue 14 class 1: a decision names the revision the reviewer saw, and the service compares it
with the change's revision under the change's row lock. A change that moved on is a 409
``revision_changed``, and nothing is signed."""
import pytest

from core.errors import InvalidState
from releases import services
from tests.releases.stories import new_artifact, pending, pending_in_production, reload


def rebuild(demo, cr, at):
    return services.change_request_update(actor=demo.dev, change_request=cr, changes={"artifact": new_artifact()},
                                          at=at)


@pytest.mark.parametrize("decide", [services.change_request_approve, services.change_request_reject])
def test_a_decision_on_a_revision_the_change_has_left_is_refused(demo, now, nothing_written, decide):
    cr = pending_in_production(demo, now)
    rebuild(demo, cr, now)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        decide(actor=demo.rev, change_request=cr, comment="Looked fine.", via="portal", revision=1, at=now)

    assert refused.value.status_code == 409
    assert refused.value.codes == ["revision_changed"]
    assert "revision 1" in refused.value.messages()[0] and "revision 2" in refused.value.messages()[0]
    assert not reload(cr).approvals.filter(reviewer=demo.rev).exists()


def test_the_revision_seen_is_the_revision_approved(demo, now):
    cr = pending_in_production(demo, now)
    cr = rebuild(demo, cr, now)

    cr = services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", revision=2, at=now)

    [approval] = cr.approvals.filter(reviewer=demo.rev)
    assert (approval.revision, approval.artifact, approval.stale) == (2, cr.artifact, False)


def test_a_revision_that_never_existed_is_refused_too(demo, now, nothing_written):
    cr = pending(demo, now)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        services.change_request_approve(actor=demo.rev, change_request=cr, revision=3, at=now)

    assert refused.value.codes == ["revision_changed"]
