"""A4: the daily creep scan. Each finding has a case that raises it and one that must not."""
from datetime import timedelta

from django.contrib.auth.models import Permission
from django.utils import timezone
from guardian.models import UserObjectPermission

from audit.models import Alert
from governance import creep, services
from governance.models import ConflictRule, RoleAssignment, SoDException


def test_a_clean_demo_raises_nothing(demo):
    at = timezone.now()
    assert creep.scan_drift(at) == 0
    assert creep.scan_expired_active(at) == 0
    assert creep.scan_conflicts(at) == 0
    assert creep.scan_dormant(at) == 0
    assert Alert.objects.count() == 0


def test_drift_a_hand_written_object_permission(demo):
    permission = Permission.objects.get(codename="duty_deploy")
    UserObjectPermission.objects.create(user=demo.dev, permission=permission, content_object=demo.production)
    assert creep.scan_drift(timezone.now()) == 1
    alert = Alert.objects.get(kind="permission_drift")
    assert alert.actor == demo.dev and "duty_deploy:%s" % demo.production.pk in alert.details["unexplained"]
    assert creep.scan_drift(timezone.now()) == 0  # still open: not raised twice


def test_expired_but_still_active_grant(demo):
    grant = RoleAssignment.objects.get(user=demo.rev, environment=demo.production)
    at = grant.expires_at + timedelta(hours=1)
    overdue = RoleAssignment.objects.filter(status="active", expires_at__lte=at - timedelta(minutes=30))
    assert creep.scan_expired_active(at) == overdue.count() >= 1
    assert Alert.objects.filter(kind="expired_grant_active", details__assignment=grant.pk).exists()
    services.role_assignments_expire_due(at=at)
    Alert.objects.update(status="resolved")
    assert creep.scan_expired_active(at) == 0


def test_conflict_under_a_rule_added_after_the_grants(demo):
    assert creep.scan_conflicts(timezone.now()) == 0
    # sec holds approve and (now) a rule forbids approve × security_approve on production.
    ConflictRule.objects.create(duty_a="approve", duty_b="security_approve", tier="production")
    assert creep.scan_conflicts(timezone.now()) == 1
    alert = Alert.objects.get(kind="sod_conflict_held")
    assert alert.actor == demo.sec and alert.environment == "production" and alert.severity == "critical"


def test_conflict_covered_by_an_exception_is_not_reported(demo):
    ConflictRule.objects.create(duty_a="approve", duty_b="security_approve", tier="production")
    SoDException.objects.create(user=demo.sec, duty_a="approve", duty_b="security_approve", justification="j",
                                expires_at=timezone.now() + timedelta(days=5), requested_by=demo.mgr,
                                approved_by=demo.admin, status="active")
    assert creep.scan_conflicts(timezone.now()) == 0


def test_dormant_grants(demo):
    later = timezone.now() + timedelta(days=100)
    used = RoleAssignment.objects.get(user=demo.dev, environment=demo.staging)
    RoleAssignment.objects.filter(pk=used.pk).update(last_used_at=later - timedelta(days=2))
    creep.scan_dormant(later)
    dormant = set(Alert.objects.filter(kind="dormant_grant").values_list("details__assignment", flat=True))
    assert used.pk not in dormant
    assert RoleAssignment.objects.get(user=demo.dev2, environment=demo.staging).pk in dormant
