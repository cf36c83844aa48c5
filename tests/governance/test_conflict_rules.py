"""G3's rule table, a control (RULES.md section 8): security for all environments or an administrator
changes it; a new rule binds the very next grant (approvals re-check it too, see
test_grant_approval.py); switching one off needs a second person."""
import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from governance import duties
from governance.controls.services import control_change, control_change_approve
from core.errors import Denied
from governance.models import ConflictRule


AUTHORS_DO_NOT_REVIEW_PRODUCTION = {"duty_a": duties.SUBMIT, "duty_b": duties.APPROVE, "tier": "production",
                                    "description": "Authors do not review production changes."}


def add_rule(actor):
    change = control_change(actor=actor, kind="governance.conflictrule", values=AUTHORS_DO_NOT_REVIEW_PRODUCTION)
    return ConflictRule.objects.get(pk=change.target_id)


def test_security_adds_a_rule_that_binds_the_next_grant(demo, grant, nothing_written):
    rule = add_rule(demo.sec)

    event = AuditEvent.objects.order_by("-sequence").first()
    assert (event.action, event.actor_username) == ("control.changed", "sec")
    assert (event.data["kind"], event.data["target"], event.data["weakening"]) == (
        "governance.conflictrule", str(rule.pk), [])
    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)
    assert refused.value.codes == ["sod_conflict"]
    assert "submit and approve may not be held together for production" in refused.value.messages()[0]


def test_a_rule_switched_off_by_two_people_binds_nothing(demo, grant):
    rule = add_rule(demo.sec)
    proposal = control_change(actor=demo.sec, kind="governance.conflictrule", target=rule, values={"is_active": False})
    still_active = ConflictRule.objects.get(pk=rule.pk).is_active
    control_change_approve(actor=demo.admin, change=proposal)

    assert (proposal.status, still_active) == ("pending", True)
    assert grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30).status == "pending"


@pytest.mark.parametrize("actor", ["mgr", "rev", "auditor"])
def test_changing_rules_needs_security_or_an_administrator(demo, nothing_written, actor):
    with nothing_written(), pytest.raises(Denied) as refused:
        add_rule(getattr(demo, actor))

    assert refused.value.codes == ["missing_duty"]


def test_a_disabled_administrator_account_changes_no_rule(demo, refetch, nothing_written):
    get_user_model().objects.filter(pk=demo.admin.pk).update(is_active=False)

    with nothing_written(), pytest.raises(Denied):
        add_rule(refetch(demo.admin))

    assert not ConflictRule.objects.filter(duty_a=duties.SUBMIT, duty_b=duties.APPROVE).exists()
