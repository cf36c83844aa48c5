"""G3: an SoD exception is a documented, time-boxed, four-eyes permission to hold two conflicting
duties. A manager (or security) asks; a security-duty holder who is neither the holder nor the
requester approves; security revokes."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from governance import duties, services
from core.errors import Denied, InvalidState
from governance.models import SoDException

Status = SoDException.Status


@pytest.fixture
def ask(demo, now):
    """``ask(actor, user)`` requests a submit × deploy exception on production for 14 days."""

    def request(actor, user, **overrides):
        arguments = {
            "actor": actor,
            "user": user,
            "duty_a": duties.SUBMIT,
            "duty_b": duties.DEPLOY,
            "environment": demo.production,
            "justification": "Sole engineer on the payments hotfix rota this fortnight",
            "expires_at": now + timedelta(days=14),
            "at": now,
        }
        arguments.update(overrides)
        return services.sod_exception_request(**arguments)

    return request


def test_a_manager_asks_and_security_approves(demo, now, ask):
    exception = ask(demo.mgr, demo.ops)
    assert exception.status == Status.PENDING
    assert exception.requested_by == demo.mgr
    assert not exception.covers(duties.SUBMIT, duties.DEPLOY, demo.production, now)

    approved = services.sod_exception_approve(actor=demo.sec, exception=exception, at=now + timedelta(hours=1))

    assert approved.status == Status.ACTIVE
    assert (approved.approved_by, approved.approved_at) == (demo.sec, now + timedelta(hours=1))
    assert approved.covers(duties.DEPLOY, duties.SUBMIT, demo.production, now + timedelta(days=13))
    assert not approved.covers(duties.DEPLOY, duties.SUBMIT, demo.production, now + timedelta(days=14))
    assert not approved.covers(duties.DEPLOY, duties.SUBMIT, demo.staging, now)
    assert list(SoDException.objects.active(now + timedelta(hours=2))) == [approved]


def test_security_revokes_an_exception(demo, now, ask):
    exception = services.sod_exception_approve(actor=demo.sec, exception=ask(demo.mgr, demo.ops), at=now)

    revoked = services.sod_exception_revoke(actor=demo.sec, exception=exception, reason="Rota filled", at=now)

    assert revoked.status == Status.REVOKED
    assert not SoDException.objects.active(now).exists()


def test_a_pending_exception_may_be_revoked(demo, now, ask):
    assert services.sod_exception_revoke(
        actor=demo.sec, exception=ask(demo.mgr, demo.ops), reason="Asked by mistake", at=now
    ).status == Status.REVOKED


# --- who approves -----------------------------------------------------------------------------


def test_the_requester_may_not_approve(demo, now, ask, nothing_written):
    exception = ask(demo.sec, demo.ops)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.sod_exception_approve(actor=demo.sec, exception=exception, at=now)

    assert refused.value.codes == ["four_eyes_exception"]


def test_the_holder_may_not_approve(demo, now, ask, nothing_written):
    exception = ask(demo.mgr, demo.sec, duty_a=duties.APPROVE)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.sod_exception_approve(actor=demo.sec, exception=exception, at=now)

    assert refused.value.codes == ["four_eyes_exception"]


@pytest.mark.parametrize("actor", ["mgr", "rev", "auditor", "admin"])
def test_approving_needs_security_approve(demo, now, ask, nothing_written, actor):
    exception = ask(demo.admin if actor == "mgr" else demo.mgr, demo.ops)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.sod_exception_approve(actor=getattr(demo, actor), exception=exception, at=now)

    assert refused.value.codes == ["missing_duty"]
    assert "security_approve" in refused.value.messages()[0]


def test_a_manager_approving_their_own_request_hears_both_reasons(demo, now, ask, nothing_written):
    exception = ask(demo.mgr, demo.ops)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.sod_exception_approve(actor=demo.mgr, exception=exception, at=now)

    assert refused.value.codes == ["four_eyes_exception", "missing_duty"]


def test_security_for_staging_only_may_not_approve_a_production_exception(demo, now, ask, grant, nothing_written):
    """K6: a duty granted for one environment counts only there."""
    rev2_security = grant(demo.mgr, demo.rev2, "security", demo.staging, days=30)
    services.role_assignment_approve(actor=demo.sec, assignment=rev2_security, at=now)
    production = ask(demo.mgr, demo.ops)
    staging = ask(demo.mgr, demo.ops, environment=demo.staging)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.sod_exception_approve(actor=demo.rev2, exception=production, at=now)
    approved = services.sod_exception_approve(actor=demo.rev2, exception=staging, at=now)

    assert refused.value.codes == ["missing_duty"]
    assert refused.value.messages() == ["Approving an SoD exception needs security_approve for production."]
    assert approved.approved_by == demo.rev2


# --- states -----------------------------------------------------------------------------------


def test_an_exception_is_approved_once(demo, now, ask, nothing_written):
    exception = services.sod_exception_approve(actor=demo.sec, exception=ask(demo.mgr, demo.ops), at=now)

    with nothing_written(), pytest.raises(InvalidState) as refused:
        services.sod_exception_approve(actor=demo.sec, exception=exception, at=now)

    assert refused.value.codes == ["invalid_state"]


def test_a_revoked_exception_cannot_be_approved(demo, now, ask, nothing_written):
    exception = services.sod_exception_revoke(actor=demo.sec, exception=ask(demo.mgr, demo.ops), reason="No", at=now)

    with nothing_written(), pytest.raises(InvalidState):
        services.sod_exception_approve(actor=demo.sec, exception=exception, at=now)


def test_an_exception_whose_expiry_passed_cannot_be_approved(demo, now, ask, nothing_written):
    exception = ask(demo.mgr, demo.ops, expires_at=now + timedelta(days=1))

    with nothing_written(), pytest.raises(InvalidState) as refused:
        services.sod_exception_approve(actor=demo.sec, exception=exception, at=now + timedelta(days=1))

    assert "expiry has passed" in refused.value.messages()[0]


def test_an_exception_is_revoked_once(demo, now, ask, nothing_written):
    exception = services.sod_exception_revoke(actor=demo.sec, exception=ask(demo.mgr, demo.ops), reason="No", at=now)

    with nothing_written(), pytest.raises(InvalidState):
        services.sod_exception_revoke(actor=demo.sec, exception=exception, reason="Again", at=now)


# --- who asks, who revokes, with what ---------------------------------------------------------


@pytest.mark.parametrize("actor", ["rev", "dev", "auditor", "ops"])
def test_asking_needs_manage_roles_or_security(demo, ask, nothing_written, actor):
    with nothing_written(), pytest.raises(Denied) as refused:
        ask(getattr(demo, actor), demo.ops)

    assert refused.value.codes == ["missing_duty"]


def test_a_manager_of_another_team_may_not_ask(demo, now, ask, grant, nothing_written):
    idev_as_identity_manager = grant(demo.admin, demo.idev, "manager", team=demo.identity, days=30)
    services.role_assignment_approve(actor=demo.sec, assignment=idev_as_identity_manager, at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        ask(demo.idev, demo.ops)

    assert refused.value.codes == ["missing_duty"]


def test_revoking_needs_security_approve(demo, now, ask, nothing_written):
    exception = services.sod_exception_approve(actor=demo.sec, exception=ask(demo.mgr, demo.ops), at=now)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.sod_exception_revoke(actor=demo.mgr, exception=exception, reason="Rota filled", at=now)

    assert refused.value.codes == ["missing_duty"]


def test_an_administrator_may_ask_and_revoke_but_not_approve(demo, now, ask, nothing_written):
    exception = ask(demo.admin, demo.ops)
    with nothing_written(), pytest.raises(Denied):
        services.sod_exception_approve(actor=demo.admin, exception=exception, at=now)

    assert services.sod_exception_revoke(
        actor=demo.admin, exception=exception, reason="Raised in error", at=now
    ).status == Status.REVOKED


def test_a_disabled_administrator_account_neither_asks_nor_revokes(demo, now, ask, refetch, nothing_written):
    exception = services.sod_exception_approve(actor=demo.sec, exception=ask(demo.mgr, demo.ops), at=now)
    get_user_model().objects.filter(pk=demo.admin.pk).update(is_active=False)
    disabled_admin = refetch(demo.admin)

    with nothing_written(), pytest.raises(Denied) as asking:
        ask(disabled_admin, demo.dev)
    with nothing_written(), pytest.raises(Denied) as revoking:
        services.sod_exception_revoke(actor=disabled_admin, exception=exception, reason="Tidy up", at=now)

    assert asking.value.codes == revoking.value.codes == ["missing_duty"]


@pytest.mark.parametrize("reason", ["", "  "])
def test_revoking_needs_a_reason(demo, now, ask, nothing_written, reason):
    exception = ask(demo.mgr, demo.ops)

    with nothing_written(), pytest.raises(ValidationError) as invalid:
        services.sod_exception_revoke(actor=demo.sec, exception=exception, reason=reason, at=now)

    assert set(invalid.value.message_dict) == {"reason"}


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"justification": "  "}, "justification"),
        ({"expires_at": None}, "expires_at"),
        ({"expires_days": 0}, "expires_at"),
        ({"expires_days": 91}, "expires_at"),
        ({"duty_a": duties.SUBMIT, "duty_b": duties.APPROVE}, "duty_b"),
        ({"duty_a": duties.DEPLOY, "duty_b": duties.DEPLOY}, "duty_b"),
    ],
)
def test_an_exception_needs_a_justification_a_bounded_expiry_and_a_rule_to_except(
    demo, now, ask, nothing_written, overrides, field
):
    if "expires_days" in overrides:
        overrides = {"expires_at": now + timedelta(days=overrides["expires_days"])}

    with nothing_written(), pytest.raises(ValidationError) as invalid:
        ask(demo.mgr, demo.ops, **overrides)

    assert set(invalid.value.message_dict) == {field}


def test_the_duties_may_be_named_in_either_order(demo, ask):
    assert ask(demo.mgr, demo.ops, duty_a=duties.DEPLOY, duty_b=duties.SUBMIT).status == Status.PENDING
