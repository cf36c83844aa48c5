"""C1: whoever holds submit on the environment, in the change's team, opens a draft as its author;
CI may list the commit authors as contributors."""
import pytest
from django.core.exceptions import ValidationError

from governance import services as governance
from core.errors import Denied
from governance.models import RoleAssignment
from releases import services
from releases.models import ChangeRequest
from tests.releases.stories import draft, events_for, new_artifact


def test_a_developer_opens_a_draft_as_its_author(demo, now):
    cr = draft(demo, now, author=demo.dev, environment=demo.staging, contributors=["dev2"], risk="low")

    assert cr.state == ChangeRequest.State.DRAFT
    assert cr.author == demo.dev
    assert cr.revision == 1
    assert cr.team == demo.payments
    assert list(cr.contributors.all()) == [demo.dev2]
    [event] = events_for(cr)
    assert event.action == "change_request.created"
    assert event.actor == demo.dev
    assert event.data["contributors"] == ["dev2"]


def test_the_author_is_never_listed_as_their_own_contributor(demo, now):
    cr = draft(demo, now, author=demo.dev, contributors=["dev", "dev2", "dev2"])

    assert list(cr.contributors.values_list("username", flat=True)) == ["dev2"]


def test_an_operator_without_submit_may_not_open_a_change(demo, now, nothing_written):
    with nothing_written(), pytest.raises(Denied) as refused:
        draft(demo, now, author=demo.ops, environment=demo.production)

    assert refused.value.codes == ["missing_duty"]


def test_a_developer_of_another_team_may_not_open_a_change_for_payments(demo, now, nothing_written):
    """idev holds submit on every environment, but in team identity."""
    with nothing_written(), pytest.raises(Denied) as refused:
        draft(demo, now, author=demo.idev, team=demo.payments, environment=demo.staging)

    assert refused.value.codes == ["not_team_member"]


def test_an_outsider_without_any_duty_hears_both_reasons(demo, now, nothing_written):
    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_create(
            actor=demo.ops, team=demo.identity, environment=demo.staging, title="Hotfix", artifact=new_artifact(),
            at=now,
        )

    assert refused.value.codes == ["missing_duty", "not_team_member"]


def test_a_developer_may_open_changes_for_every_environment_they_hold_submit_on(demo, now):
    for environment in (demo.development, demo.staging, demo.production):
        assert draft(demo, now, environment=environment).environment == environment


def test_a_developer_whose_grant_was_revoked_may_no_longer_open_changes(demo, now, nothing_written):
    grant = RoleAssignment.objects.get(user=demo.dev, role__slug="developer", environment=demo.staging)
    governance.role_assignment_revoke(actor=demo.mgr, assignment=grant, reason="moved to another team", at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        draft(demo, now, author=demo.dev, environment=demo.staging)

    assert refused.value.codes == ["missing_duty"]


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"title": "  "}, "title"),
        ({"artifact": " "}, "artifact"),
        ({"change_type": "yolo"}, "change_type"),
        ({"risk": "extreme"}, "risk"),
        ({"contributors": ["nobody"]}, "contributors"),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(demo, now, nothing_written, fields, field):
    arguments = {"title": "Retry card authorisation", "artifact": new_artifact(), **fields}
    with nothing_written(), pytest.raises(ValidationError) as refused:
        services.change_request_create(
            actor=demo.dev, team=demo.payments, environment=demo.staging, at=now, **arguments
        )

    assert field in refused.value.message_dict
