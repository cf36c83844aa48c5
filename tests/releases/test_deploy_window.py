"""C7: a policy's deploy window (weekdays and hours) is read in the environment's own time zone,
and may wrap midnight."""
from datetime import datetime, time, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest

from core.errors import Denied
from releases import services
from releases.models import ApprovalPolicy
from releases.policy import in_deploy_window
from tests.releases.stories import approved_in_staging
from tests.factories import set_control

UTC = dt_timezone.utc
NEW_YORK = ZoneInfo("America/New_York")


def next_weekday(now, isoweekday: int):
    """The date of the next given weekday at least two days ahead (grants of the stories last 30 days)."""
    day = now.date() + timedelta(days=2)
    while day.isoweekday() != isoweekday:
        day += timedelta(days=1)
    return day


def utc(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


@pytest.fixture
def staging_in_new_york(demo):
    return set_control(demo.staging, by=demo.admin, second=demo.sec, time_zone="America/New_York")


def set_window(demo, *, weekdays="", start=None, end=None):
    return set_control(ApprovalPolicy.objects.get(environment=demo.staging), by=demo.admin, second=demo.sec,
                       deploy_weekdays=weekdays, deploy_window_start=start, deploy_window_end=end)


def deploy_at(demo, at):
    cr = approved_in_staging(demo, at)
    return services.deployment_start(actor=demo.ops, change_request=cr, at=at)


def test_office_hours_are_new_york_hours_not_utc(demo, now, staging_in_new_york, nothing_written):
    """09:00–17:00 on weekdays in New York. 12:30 UTC on a Monday is inside those hours in UTC but
    07:30 (or 08:30 in summer) in New York; 20:30 UTC is after hours in UTC, 15:30/16:30 in New York."""
    set_window(demo, weekdays="1,2,3,4,5", start=time(9), end=time(17))
    monday = next_weekday(now, 1)
    early = utc(monday, 12, 30)
    assert early.astimezone(NEW_YORK).time() < time(9)

    cr = approved_in_staging(demo, early)
    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=early)
    assert refused.value.codes == ["outside_deploy_window"]

    late_in_utc = utc(monday, 20, 30)
    assert time(9) <= late_in_utc.astimezone(NEW_YORK).time() < time(17)
    assert services.deployment_start(actor=demo.ops, change_request=cr, at=late_in_utc)


def test_the_weekday_is_new_yorks_weekday(demo, now, staging_in_new_york, nothing_written):
    """Weekdays only, any hour: Monday 03:00 UTC is still Sunday evening in New York, and Saturday
    02:00 UTC is still Friday evening there."""
    set_window(demo, weekdays="1,2,3,4,5")

    monday_small_hours = utc(next_weekday(now, 1), 3)
    cr = approved_in_staging(demo, monday_small_hours)
    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=monday_small_hours)
    assert refused.value.codes == ["outside_deploy_window"]

    assert deploy_at(demo, utc(next_weekday(now, 6), 2))


def test_a_window_that_wraps_midnight(demo, now, nothing_written):
    """22:00–04:00 UTC (staging's default zone): late evening and small hours are in, the day is out."""
    set_window(demo, start=time(22), end=time(4))
    day = next_weekday(now, 3)

    assert deploy_at(demo, utc(day, 23, 30))
    assert deploy_at(demo, utc(day, 3, 59))

    cr = approved_in_staging(demo, utc(day, 12))
    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.ops, change_request=cr, at=utc(day, 12))
    assert refused.value.codes == ["outside_deploy_window"]


def test_outside_the_window_is_reported_with_the_other_reasons(demo, now, nothing_written):
    set_window(demo, start=time(9), end=time(17))
    at = utc(next_weekday(now, 2), 18)
    cr = approved_in_staging(demo, at, author=demo.dev)

    with nothing_written(), pytest.raises(Denied) as refused:
        services.deployment_start(actor=demo.dev, change_request=cr, at=at)

    assert refused.value.codes == ["missing_duty", "author_cannot_deploy", "outside_deploy_window"]


@pytest.mark.parametrize(
    "local_time, inside",
    [
        (time(21, 59), False),
        (time(22, 0), True),
        (time(23, 59), True),
        (time(0, 0), True),
        (time(3, 59, 59), True),
        (time(4, 0), False),
        (time(12, 0), False),
    ],
)
def test_the_edges_of_a_window_wrapping_midnight(local_time, inside):
    """Start inclusive, end exclusive, read in Tokyo's time (UTC+9, no daylight saving)."""
    policy = ApprovalPolicy(deploy_window_start=time(22), deploy_window_end=time(4))
    at = datetime.combine(datetime(2026, 3, 4).date(), local_time, tzinfo=ZoneInfo("Asia/Tokyo")).astimezone(UTC)

    assert in_deploy_window(policy, "Asia/Tokyo", at) is inside


@pytest.mark.parametrize(
    "local_time, inside", [(time(8, 59), False), (time(9, 0), True), (time(16, 59), True), (time(17, 0), False)]
)
def test_the_edges_of_a_day_window(local_time, inside):
    policy = ApprovalPolicy(deploy_window_start=time(9), deploy_window_end=time(17), deploy_weekdays="1,2,3,4,5")
    wednesday = datetime(2026, 3, 4).date()
    at = datetime.combine(wednesday, local_time, tzinfo=ZoneInfo("Asia/Tokyo")).astimezone(UTC)

    assert in_deploy_window(policy, "Asia/Tokyo", at) is inside


def test_no_window_means_any_time(demo):
    assert in_deploy_window(ApprovalPolicy(), "UTC", datetime(2026, 3, 8, 3, tzinfo=UTC))
