"""C12: a superuser gets no bypass of C1–C11: without a duty, admin is refused like anyone else."""
import pytest

from core.errors import Denied
from releases import services
from tests.factories import bootstrap_grant
from tests.releases.stories import approved_in_staging, deploy, draft, new_artifact, pending, pending_in_production


def test_admin_may_not_open_a_change(demo, now, nothing_written):
    with nothing_written(), pytest.raises(Denied) as refused:
        draft(demo, now, author=demo.admin)

    assert refused.value.codes == ["missing_duty", "not_team_member"]


def test_admin_may_not_submit_someone_elses_draft(demo, now, nothing_written):
    cr = draft(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_submit(actor=demo.admin, change_request=cr, at=now)

    assert refused.value.codes == ["missing_duty", "not_author"]


def test_admin_may_not_edit_someone_elses_change(demo, now, nothing_written):
    cr = pending(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_update(
            actor=demo.admin, change_request=cr, changes={"artifact": new_artifact()}, at=now
        )

    assert refused.value.codes == ["not_author", "missing_duty"]


@pytest.mark.parametrize("decide", [services.change_request_approve, services.change_request_reject])
def test_admin_may_not_decide_a_change(demo, now, nothing_written, decide):
    cr = pending(demo, now, environment=demo.staging)

    with nothing_written(), pytest.raises(Denied) as refused:
        decide(actor=demo.admin, change_request=cr, via="portal", at=now)

    assert refused.value.codes == ["missing_duty"]


def test_admin_may_not_deploy(demo, now, nothing_written):
    cr = approved_in_staging(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.admin, change_request=cr, at=now)

    assert refused.value.codes == ["missing_duty"]


def test_admin_may_not_roll_back_or_review(demo, now, nothing_written):
    cr = pending_in_production(demo, now, change_type="emergency")
    cr = services.change_request_approve(actor=demo.sec, change_request=cr, via="portal", at=now)
    deployment = deploy(demo, cr, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_rollback(actor=demo.admin, deployment=deployment, reason="I said so.", at=now)
    assert refused.value.codes == ["missing_duty"]

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_review_pir(actor=demo.admin, change_request=cr, notes="Fine.", at=now)
    assert refused.value.codes == ["missing_duty"]


def test_a_superuser_holding_a_duty_is_still_bound_by_separation_of_duties(demo, now, nothing_written):
    """Given developer and reviewer in staging, admin writes a change and may not approve it."""
    bootstrap_grant(demo.admin, "developer", demo.payments, demo.staging)
    bootstrap_grant(demo.admin, "reviewer", demo.payments, demo.staging)
    cr = pending(demo, now, author=demo.admin)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.admin, change_request=cr, at=now)

    assert refused.value.codes == ["author_cannot_approve"]
