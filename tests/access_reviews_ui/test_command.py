"""``manage.py access_review_start``: the schedule's service, started by hand; one campaign per period."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from governance.models import AccessReview, RoleAssignment
from governance.tasks import current_quarter


def run(*args) -> str:
    out = StringIO()
    call_command("access_review_start", *args, stdout=out)
    return out.getvalue()


def test_it_starts_this_quarters_campaign_once(demo):
    first = run()
    second = run()

    review = AccessReview.objects.get()
    assert review.period == current_quarter() and review.team is None
    assert review.items.count() == RoleAssignment.objects.in_force().count()
    assert f"Access review {current_quarter()} (#{review.pk}) started: open, 18 items" in first
    assert "already exists: open, 18 items" in second


def test_a_team_period_and_policy_can_be_given(demo):
    output = run("--team", "payments", "--period", "2027-Q1", "--undecided", "escalate", "--due-days", "30")

    review = AccessReview.objects.get()
    assert (review.team, review.period, review.undecided_policy) == (demo.payments, "2027-Q1", "escalate")
    assert (review.due_at - review.created_at).days == 30
    assert "Access review 2027-Q1 · payments" in output and "15 items" in output


@pytest.mark.parametrize("args, message", [
    (["--team", "nosuch"], "No team has the slug nosuch."),
    (["--due-days", "0"], "--due-days must be at least 1."),
    (["--period", "Q" * 33], "--period is at most 32 characters."),
])
def test_bad_arguments_start_nothing(demo, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not AccessReview.objects.exists()


def test_an_unknown_policy_is_refused_by_the_parser(demo):
    with pytest.raises(CommandError):
        run("--undecided", "keep")
    assert not AccessReview.objects.exists()
