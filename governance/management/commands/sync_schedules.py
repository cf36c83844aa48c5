from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from config.schedule import SCHEDULE


def _schedule_kwargs(spec: dict) -> dict:
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
        "missing tasks are created, tasks an admin has changed are kept unless --reset is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Overwrite intervals changed in the admin.")

    @transaction.atomic
    def handle(self, *args, reset=False, **options):
        created = kept = reset_count = 0
        for name, spec in SCHEDULE.items():
            task = PeriodicTask.objects.filter(name=name).first()
            if task is None:
                PeriodicTask.objects.create(name=name, task=spec["task"], **_schedule_kwargs(spec))
                created += 1
            elif reset:
                for field, value in {"task": spec["task"], **_schedule_kwargs(spec)}.items():
                    setattr(task, field, value)
                task.save()
                reset_count += 1
            else:
                kept += 1
        self.stdout.write(f"Schedules: {created} created, {kept} kept as configured, {reset_count} reset.")
