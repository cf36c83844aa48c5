from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from config.schedule import SCHEDULE
from governance.controls.services import control_change
from core.errors import Refused


def _schedule_values(spec: dict) -> dict:
    if "every" in spec:
        interval, _ = IntervalSchedule.objects.get_or_create(every=spec["every"], period=IntervalSchedule.SECONDS)
        return {"interval": interval, "crontab": None}
    minute, hour, day_of_month, month_of_year, day_of_week = spec["crontab"].split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
        day_of_week=day_of_week, timezone="UTC",
    )
    return {"crontab": crontab, "interval": None}


class Command(BaseCommand):
    help = (
        "Write the code-declared beat schedule (config/schedule.py) into django-celery-beat. Idempotent: "
        "missing tasks are created, tasks an admin has changed are kept unless --reset is given. Every "
        "write is a control change on the audit trail; a reset that would slow or disable a task is a "
        "weakening change, which only a person can propose (in the admin), so it is reported and skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Overwrite intervals changed in the admin.")

    @transaction.atomic
    def handle(self, *args, reset=False, **options):
        created = kept = reset_count = 0
        for name, spec in SCHEDULE.items():
            task = PeriodicTask.objects.filter(name=name).first()
            values = {"task": spec["task"], **_schedule_values(spec)}
            if task is None:
                control_change(actor=None, kind="django_celery_beat.periodictask", values={"name": name, **values},
                               source="sync_schedules")
                created += 1
            elif reset:
                try:
                    with transaction.atomic():
                        change = control_change(actor=None, kind="django_celery_beat.periodictask", target=task,
                                                values=values, source="sync_schedules --reset")
                    reset_count += change is not None
                    kept += change is None
                except Refused as refusal:
                    kept += 1
                    self.stderr.write(f"{name}: kept ({'; '.join(refusal.messages())})")
            else:
                kept += 1
        self.stdout.write(f"Schedules: {created} created, {kept} kept as configured, {reset_count} reset.")
