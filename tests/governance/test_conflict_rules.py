"""G3's rule table: security or an administrator changes it, and a new rule binds the very next
grant (approvals re-check it too, see test_grant_approval.py)."""
import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from governance import duties, services
from governance.errors import Denied
from governance.models import ConflictRule


def authors_do_not_review_production():
    return ConflictRule(duty_a=duties.SUBMIT, duty_b=duties.APPROVE, tier="production",
                        description="Authors do not review production changes.")


def test_security_adds_a_rule_that_binds_the_next_grant(demo, grant, nothing_written):
    rule = services.conflict_rule_save(actor=demo.sec, rule=authors_do_not_review_production())

    event = AuditEvent.objects.order_by("-sequence").first()
    assert (event.action, event.actor_username, event.target_id) == ("conflict_rule.created", "sec", str(rule.pk))
    with nothing_written(), pytest.raises(Denied) as refused:
        grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30)
    assert refused.value.codes == ["sod_conflict"]
    assert "submit and approve may not be held together for production" in refused.value.messages()[0]


def test_a_deactivated_rule_binds_nothing(demo, grant):
    rule = services.conflict_rule_save(actor=demo.sec, rule=authors_do_not_review_production())
    rule.is_active = False
    services.conflict_rule_save(actor=demo.admin, rule=rule)

    assert grant(demo.mgr, demo.dev2, "reviewer", demo.production, days=30).status == "pending"


@pytest.mark.parametrize("actor", ["mgr", "rev", "auditor"])
def test_changing_rules_needs_security_or_an_administrator(demo, nothing_written, actor):
    with nothing_written(), pytest.raises(Denied) as refused:
        services.conflict_rule_save(actor=getattr(demo, actor), rule=authors_do_not_review_production())

    assert refused.value.codes == ["missing_duty"]


def test_a_disabled_administrator_account_changes_no_rule(demo, refetch, nothing_written):
    get_user_model().objects.filter(pk=demo.admin.pk).update(is_active=False)

    with nothing_written(), pytest.raises(Denied):
        services.conflict_rule_save(actor=refetch(demo.admin), rule=authors_do_not_review_production())

    assert not ConflictRule.objects.filter(duty_a=duties.SUBMIT, duty_b=duties.APPROVE).exists()
