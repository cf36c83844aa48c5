"""E2: every alert kind has a case that raises it and one that must not."""
from datetime import datetime, timedelta, timezone as dt_timezone

from django.utils import timezone

from audit import context
from audit.chain import record
from audit.models import Alert
from releases import anomalies, services
from releases.models import Approval, ChangeRequest


def _staging_change(demo, at, author=None):
    author = author or demo.dev
    cr = services.change_request_create(actor=author, team=demo.payments, environment=demo.staging,
                                        title="t", artifact=f"a-{at.timestamp()}", at=at)
    return services.change_request_submit(actor=author, change_request=cr, at=at)


def test_rubber_stamp_under_sixty_seconds(demo):
    at = datetime(2026, 11, 25, 10, 0, tzinfo=dt_timezone.utc)
    fast = _staging_change(demo, at)
    approval = Approval(change_request=fast, reviewer=demo.rev, created_at=at + timedelta(seconds=20), via="api")
    approval.pk = 1
    anomalies.check_rubber_stamp(approval=approval, cr=fast)
    assert Alert.objects.filter(kind="rubber_stamp").count() == 1
    slow = Approval(change_request=fast, reviewer=demo.rev, created_at=at + timedelta(seconds=61), via="api")
    slow.pk = 2
    anomalies.check_rubber_stamp(approval=slow, cr=fast)
    assert Alert.objects.filter(kind="rubber_stamp").count() == 1


def test_off_hours_in_the_teams_time_zone(demo):
    cr = ChangeRequest.objects.filter(team=demo.payments).first()
    # payments works in Europe/London: 22:30 UTC on a Wednesday is off hours, 10:00 is not.
    anomalies.check_privileged_action(actor=demo.rev, action="approve", cr=cr,
                                      at=datetime(2026, 11, 25, 10, 0, tzinfo=dt_timezone.utc))
    assert not Alert.objects.filter(kind="off_hours").exists()
    anomalies.check_privileged_action(actor=demo.rev, action="approve", cr=cr,
                                      at=datetime(2026, 11, 25, 22, 30, tzinfo=dt_timezone.utc))
    assert Alert.objects.filter(kind="off_hours").count() == 1
    anomalies.check_privileged_action(actor=demo.rev, action="approve", cr=cr,
                                      at=datetime(2026, 11, 28, 11, 0, tzinfo=dt_timezone.utc))  # Saturday
    assert Alert.objects.filter(kind="off_hours").count() == 2


def _as_from(ip, func):
    token = context.bind(context.RequestContext(ip=ip))
    try:
        func()
    finally:
        context.reset(token)


def test_new_ip_only_after_history_exists(demo):
    cr = ChangeRequest.objects.filter(team=demo.payments).first()
    noon = datetime(2026, 11, 25, 12, 0, tzinfo=dt_timezone.utc)
    check = lambda: anomalies.check_privileged_action(actor=demo.rev, action="approve", cr=cr, at=noon)  # noqa: E731
    _as_from("10.0.0.5", check)
    assert not Alert.objects.filter(kind="new_ip").exists()  # no IP history for rev yet: nothing to compare
    _as_from("10.0.0.5", lambda: record("change_request.approval_recorded", actor=demo.rev))
    _as_from("10.0.0.5", check)
    assert not Alert.objects.filter(kind="new_ip").exists()  # the usual IP
    _as_from("203.0.113.9", check)
    assert Alert.objects.get(kind="new_ip").details["ip"] == "203.0.113.9"


def test_a_decision_from_a_new_ip_raises_the_alert_from_its_locked_read(demo):
    """The services pass the decision read's answer (``reads.change(ip=…)``): no query of its own."""
    noon = datetime(2026, 11, 25, 12, 0, tzinfo=dt_timezone.utc)
    _as_from("10.0.0.5", lambda: record("change_request.approval_recorded", actor=demo.rev))
    usual, new = _staging_change(demo, noon), _staging_change(demo, noon + timedelta(seconds=1))
    approve = lambda cr: lambda: services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=noon + timedelta(minutes=5))  # noqa: E731
    _as_from("10.0.0.5", approve(usual))
    assert not Alert.objects.filter(kind="new_ip").exists()
    _as_from("203.0.113.9", approve(new))
    assert Alert.objects.get(kind="new_ip").details == {"change_request": new.pk, "action": "approve", "ip": "203.0.113.9"}
    seen_from = []
    original = anomalies.check_privileged_action

    def spy(**kwargs):
        seen_from.append(kwargs.get("seen_from"))
        return original(**kwargs)

    anomalies.check_privileged_action = spy
    try:
        third = _staging_change(demo, noon + timedelta(seconds=2))
        _as_from("198.51.100.4", approve(third))
    finally:
        anomalies.check_privileged_action = original
    assert seen_from == [("198.51.100.4", True, False)]


def test_reciprocal_approvals_over_threshold(demo):
    at = timezone.now()
    # dev2 gets a reviewer role on staging so dev and dev2 can approve each other.
    from tests.factories import bootstrap_grant

    bootstrap_grant(demo.dev2, "reviewer", demo.payments, demo.staging)
    bootstrap_grant(demo.dev, "reviewer", demo.payments, demo.staging)
    for n in range(4):
        for author, reviewer in ((demo.dev, demo.dev2), (demo.dev2, demo.dev)):
            cr = _staging_change(demo, at - timedelta(days=1, minutes=n * 10), author=author)
            services.change_request_approve(actor=reviewer, change_request=cr, at=at - timedelta(days=1, minutes=n * 10 - 5))
    assert anomalies.reciprocal_scan(at=at, threshold=4) == 0
    assert anomalies.reciprocal_scan(at=at, threshold=3) == 1
    assert Alert.objects.get(kind="reciprocal_approvals").details["pair"] == ["dev", "dev2"]
    assert anomalies.reciprocal_scan(at=at + timedelta(days=31), threshold=3) == 0
