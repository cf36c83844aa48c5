"""C11: where the policy sets require_interactive_signoff (production), approvals come only from
the portal's sign-off form; rejections and other environments take the API."""
import pytest

from core.errors import Denied
from releases import services
from releases.models import Approval, ApprovalPolicy
from tests.releases.stories import pending, pending_in_production
from tests.factories import set_control


def test_production_refuses_an_approval_over_the_api(demo, now, nothing_written):
    cr = pending_in_production(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.rev, change_request=cr, via="api", at=now)

    assert refused.value.codes == ["interactive_signoff_required"]


def test_production_takes_the_portals_sign_off(demo, now):
    cr = pending_in_production(demo, now)

    cr = services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)

    assert cr.approvals.get().via == Approval.Via.PORTAL


def test_the_service_defaults_to_the_api_channel(demo, now, nothing_written):
    """A client that forgets to say where the approval came from is treated as the API."""
    cr = pending_in_production(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.rev, change_request=cr, at=now)

    assert refused.value.codes == ["interactive_signoff_required"]


def test_staging_takes_approvals_over_the_api(demo, now):
    cr = pending(demo, now, environment=demo.staging)

    assert services.change_request_approve(actor=demo.rev, change_request=cr, via="api", at=now).state == "approved"


def test_a_rejection_over_the_api_is_allowed_in_production(demo, now):
    cr = pending_in_production(demo, now)

    cr = services.change_request_reject(actor=demo.rev, change_request=cr, via="api", comment="No.", at=now)

    assert cr.state == "rejected"


def test_the_author_approving_over_the_api_hears_every_reason(demo, now, nothing_written):
    cr = pending_in_production(demo, now, author=demo.dev)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.change_request_approve(actor=demo.dev, change_request=cr, via="api", at=now)

    assert refused.value.codes == ["missing_duty", "author_cannot_approve", "interactive_signoff_required"]


def test_once_the_policy_lifts_the_requirement_the_api_is_accepted(demo, now):
    set_control(ApprovalPolicy.objects.get(environment=demo.production), by=demo.admin, second=demo.sec, require_interactive_signoff=False)
    cr = pending_in_production(demo, now)

    cr = services.change_request_approve(actor=demo.rev, change_request=cr, via="api", at=now)

    assert cr.approvals.get().via == Approval.Via.API
