"""``access_review_start [--team SLUG] [--period P] [--undecided revoke|escalate] [--due-days N]``:
start an access review campaign now, through the service the schedule calls (RULES.md A1).

One campaign per period and scope: running it again reports the existing campaign (and finishes
building it, if a run was interrupted) instead of creating a second one."""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from governance import services
from governance.models import AccessReview, Team
from governance.tasks import current_quarter


class Command(BaseCommand):
    help = "Start an access review campaign now (the service the quarterly schedule calls); idempotent per period."

    def add_arguments(self, parser):
        parser.add_argument("--team", default=None, help="Review only this team's grants (slug); default every team.")
        parser.add_argument("--period", default=None, help="The period it covers, e.g. 2026-Q4; default this quarter.")
        parser.add_argument(
            "--undecided", choices=AccessReview.UndecidedPolicy.values, default=AccessReview.UndecidedPolicy.REVOKE,
            help="What closing does with undecided items: revoke the grants, or keep them and alert security.",
        )
        parser.add_argument("--due-days", type=int, default=14, help="Days reviewers have to decide (default 14).")

    def handle(self, *args, team, period, undecided, due_days, **options):
        scope = None
        if team is not None:
            scope = Team.objects.filter(slug=team).first()
            if scope is None:
                raise CommandError(f"No team has the slug {team}.")
        if due_days < 1:
            raise CommandError("--due-days must be at least 1.")
        period = (period or "").strip() or current_quarter()
        longest = AccessReview._meta.get_field("period").max_length
        if len(period) > longest:
            raise CommandError(f"--period is at most {longest} characters.")
        existed = AccessReview.objects.filter(period=period, team=scope).exists()
        try:
            review = services.access_review_start(
                period=period, team=scope, due_days=due_days, undecided_policy=undecided
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        items = review.items.count()
        verb = "already exists" if existed else "started"
        self.stdout.write(
            f"{review.name} (#{review.pk}) {verb}: {review.get_status_display().lower()}, {items} items, "
            f"due {review.due_at:%Y-%m-%d}, undecided items at close: {review.undecided_policy}."
        )
