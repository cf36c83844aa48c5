"""C3: approvals older than the policy's approval_ttl_hours no longer count (production 72 h,
staging 168 h); time is passed to the services, never slept."""
from datetime import timedelta

import pytest

from core.errors import Denied
from releases import services
from releases.models import ApprovalPolicy, ChangeRequest
from releases.policy import approval_status
from releases.selectors import change_request_for_decision, policy_context
from tests.factories import set_control, bootstrap_grant
from tests.releases.stories import approved_in_production, approved_in_staging, pending_in_production, reload

S = ChangeRequest.State


def test_production_approvals_count_for_72_hours(demo, now):
    cr = approved_in_production(demo, now)

    deployment = services.deployment_start(actor=demo.ops, change_request=cr, at=now + timedelta(hours=71, minutes=59))

    assert deployment.revision == 1


def test_after_72_hours_production_approvals_have_expired(demo, now, nothing_written):
    cr = approved_in_production(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=now + timedelta(hours=72))

    assert refused.value.codes == ["approvals_expired"]
    assert reload(cr).state == S.APPROVED


def test_staging_approvals_last_a_week(demo, now, nothing_written):
    cr = approved_in_staging(demo, now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=now + timedelta(hours=168, seconds=1))
    assert refused.value.codes == ["approvals_expired"]

    assert services.deployment_start(actor=demo.ops, change_request=cr, at=now + timedelta(hours=167))


def test_an_expired_first_approval_does_not_add_up_with_a_fresh_second(demo, now):
    """rev signs off on Monday, rev2 on Friday: rev's approval has expired, production still waits."""
    cr = pending_in_production(demo, now)
    services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)

    cr = services.change_request_approve(actor=demo.rev2, change_request=cr, via="portal", at=now + timedelta(hours=96))

    assert cr.state == S.PENDING
    status = approval_status(policy_context(change_request_for_decision(cr.pk), demo.rev2), now + timedelta(hours=96))
    assert ([a.reviewer for a in status.valid], [a.reviewer for a in status.expired]) == ([demo.rev2], [demo.rev])


def test_without_a_ttl_approvals_do_not_expire(demo, now):
    set_control(ApprovalPolicy.objects.get(environment=demo.staging), by=demo.admin, second=demo.sec, approval_ttl_hours=None)
    cr = approved_in_staging(demo, now)

    assert services.deployment_start(actor=demo.ops, change_request=cr, at=now + timedelta(days=60))


def test_expired_approvals_are_reported_with_the_other_reasons(demo, now, nothing_written):
    """rev approved and then took on operations in staging: every reason is reported together."""
    cr = approved_in_staging(demo, now)
    bootstrap_grant(demo.rev, "operations", demo.payments, demo.staging)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.rev, change_request=cr, at=now + timedelta(days=8))

    assert refused.value.codes == ["approvals_expired", "approver_cannot_deploy"]
