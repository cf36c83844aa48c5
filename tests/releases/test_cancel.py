"""The author, or a manager of the team, withdraws a change that has not started deploying."""
import pytest
from django.core.exceptions import ValidationError

from core.errors import Denied, InvalidState
from releases import services
from releases.models import ChangeRequest
from tests.releases.stories import approved_in_staging, draft, events_for, pending

S = ChangeRequest.State


@pytest.mark.parametrize("make", [draft, pending, approved_in_staging], ids=["draft", "pending", "approved"])
def test_the_author_withdraws_a_change(demo, now, make):
    cr = make(demo, now)
    from_state = cr.state

    cr = services.change_request_cancel(actor=demo.dev, change_request=cr, reason=" Superseded by CR-9. ", at=now)

    assert (cr.state, cr.closed_at, cr.close_reason) == (S.CANCELLED, now, "Superseded by CR-9.")
    [*_, event] = events_for(cr)
    assert (event.action, event.data["from_state"], event.data["to_state"]) == (
        "change_request.cancelled", from_state, "cancelled"
    )


def test_a_manager_of_the_team_withdraws_a_change(demo, now):
    cr = pending(demo, now)

    cr = services.change_request_cancel(actor=demo.mgr, change_request=cr, reason="Freeze.", at=now)

    assert cr.state == S.CANCELLED


@pytest.mark.parametrize("who", ["dev2", "rev", "ops", "admin"])
def test_nobody_else_withdraws_a_change(demo, now, nothing_written, who):
    cr = pending(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_cancel(actor=getattr(demo, who), change_request=cr, reason="Mine now.", at=now)

    assert refused.value.codes == ["not_author"]


def test_a_deploying_change_is_not_withdrawn(demo, now, nothing_written):
    cr = approved_in_staging(demo, now)
    services.deployment_start(actor=demo.ops, change_request=cr, at=now)

    with nothing_written(), pytest.raises(InvalidState):
        services.change_request_cancel(actor=demo.dev, change_request=cr, reason="Too late.", at=now)


def test_a_withdrawal_says_why(demo, now, nothing_written):
    cr = pending(demo, now)

    with nothing_written(), pytest.raises(ValidationError):
        services.change_request_cancel(actor=demo.dev, change_request=cr, reason="", at=now)
