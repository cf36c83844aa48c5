"""C6: freeze windows block deployments to their environments, except emergency changes that carry
a security approval."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from governance.controls.services import control_change
from core.errors import Denied
from releases import services
from releases.models import FreezeWindow
from tests.releases.stories import approved_in_production, approved_in_staging, pending_in_production
from tests.factories import set_control


@pytest.fixture
def year_end_freeze(demo, now):
    """Production is frozen from an hour from now for two days; sec declares it."""
    return set_control(by=demo.sec, control="releases.freezewindow", name="Year-end freeze",
                       starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=49),
                       reason="Card volumes peak.", environments=[demo.production])


def start(demo, cr, at):
    return services.deployment_start(actor=demo.ops, change_request=cr, at=at)


def test_a_normal_change_waits_for_the_freeze_to_end(demo, now, year_end_freeze, nothing_written):
    cr = approved_in_production(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo, cr, now + timedelta(hours=1))

    assert refused.value.codes == ["freeze_window_active"]
    assert "Year-end freeze" in refused.value.messages()[0]
    assert start(demo, cr, year_end_freeze.ends_at)


def test_before_the_freeze_starts_deployments_go_ahead(demo, now, year_end_freeze):
    cr = approved_in_production(demo, now)

    assert start(demo, cr, now + timedelta(minutes=59))


def test_a_freeze_on_production_leaves_staging_alone(demo, now, year_end_freeze):
    cr = approved_in_staging(demo, now)

    assert start(demo, cr, now + timedelta(hours=2))


def test_an_emergency_change_with_a_security_approval_passes_the_freeze(demo, now, year_end_freeze):
    """sec is a payments member and holds security_approve: one portal sign-off is the emergency minimum."""
    cr = pending_in_production(demo, now, change_type="emergency")
    cr = services.change_request_approve(actor=demo.sec, change_request=cr, via="portal", at=now + timedelta(hours=2))
    assert cr.state == "approved"

    deployment = start(demo, cr, now + timedelta(hours=2))

    assert deployment.state == "running"


def test_an_emergency_change_without_a_security_approval_is_frozen(demo, now, year_end_freeze, nothing_written):
    """rev is on call: their one sign-off is the emergency minimum (C10), but it is no security approval."""
    demo.payments.on_call_reviewers.add(demo.rev)
    cr = pending_in_production(demo, now, change_type="emergency")
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)
    assert cr.state == "approved"

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo, cr, now + timedelta(hours=2))

    assert refused.value.codes == ["freeze_window_active"]


def test_a_security_approval_does_not_exempt_a_normal_change(demo, now, year_end_freeze, nothing_written):
    cr = approved_in_production(demo, now, reviewers=(demo.sec, demo.rev))

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo, cr, now + timedelta(hours=2))

    assert refused.value.codes == ["freeze_window_active"]


def test_overlapping_freezes_are_all_named(demo, now, year_end_freeze, nothing_written):
    set_control(by=demo.sec, control="releases.freezewindow", name="Datacentre move", starts_at=now + timedelta(minutes=30), ends_at=now + timedelta(hours=3), environments=[demo.production, demo.staging])
    cr = approved_in_production(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        start(demo, cr, now + timedelta(hours=2))

    assert refused.value.codes == ["freeze_window_active"]
    assert "Datacentre move, Year-end freeze" in refused.value.messages()[0]


def test_only_security_declares_a_freeze(demo, now, nothing_written):
    with nothing_written(), pytest.raises(Denied) as refused:
        control_change(actor=demo.ops, kind="releases.freezewindow", values={
            "name": "Mine", "starts_at": now, "ends_at": now + timedelta(hours=1), "environments": [demo.production]})

    assert refused.value.codes == ["missing_duty"]


@pytest.mark.parametrize(
    "starts, ends, field",
    [(0, 0, "ends_at"), (2, 1, "ends_at"), (None, 1, "starts_at"), (0, None, "ends_at")],
)
def test_a_freeze_needs_a_start_before_its_end(demo, now, nothing_written, starts, ends, field):
    values = {"name": "Bad", "starts_at": None if starts is None else now + timedelta(hours=starts),
              "ends_at": None if ends is None else now + timedelta(hours=ends), "environments": [demo.production]}

    with nothing_written(), pytest.raises(ValidationError) as refused:
        control_change(actor=demo.sec, kind="releases.freezewindow", values=values)

    assert field in refused.value.message_dict
    assert not FreezeWindow.objects.filter(name="Bad").exists()
