"""Queries per request do not grow with data (issue 21): the admin lists whose rows ``bench.seed``
does not generate (test_query_counts.py counts them empty), and the evidence exports' API, at SMALL
and LARGE rows, each row with its related rows (environments, accounts, schedules)."""
import itertools
from datetime import date, timedelta

from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask,
                                       SolarSchedule)

from audit.models import EvidenceExport
from governance.models import SoDException
from releases.models import FreezeWindow, StandardChangeTemplate
from tests.factories import UserFactory
from tests.performance.counting import assert_same_at_two_sizes

ADMIN_LISTS = ("releases_freezewindow", "releases_standardchangetemplate", "governance_sodexception",
               "audit_evidenceexport", "django_celery_beat_periodictask", "django_celery_beat_intervalschedule",
               "django_celery_beat_crontabschedule", "django_celery_beat_clockedschedule",
               "django_celery_beat_solarschedule")


def test_the_other_admin_lists_cost_the_same_at_two_sizes(demo, client_as, api_as):
    numbers, environments = itertools.count(1), [demo.development, demo.staging, demo.production]

    def grow(n):
        now = timezone.now()
        for _ in range(n):
            k = next(numbers)
            user = UserFactory(username=f"holder{k}")
            window = FreezeWindow.objects.create(name=f"Freeze {k}", starts_at=now, ends_at=now + timedelta(days=1),
                                                 created_by=user)
            window.environments.set(environments)
            StandardChangeTemplate.objects.create(name=f"Template {k}", environment=demo.staging, artifact_pattern="*",
                                                  expires_at=now + timedelta(days=30), created_by=user)
            SoDException.objects.create(user=user, duty_a="approve", duty_b="deploy", environment=demo.staging,
                                        justification="Cover.", expires_at=now + timedelta(days=1),
                                        requested_by=demo.mgr, approved_by=demo.sec)
            EvidenceExport.objects.create(framework="sox", period_start=date(2026, 1, 1), period_end=date(2026, 3, 31),
                                          requested_by=user, requested_at=now)
            schedules = {"interval": IntervalSchedule.objects.create(every=k, period="minutes"),
                         "crontab": CrontabSchedule.objects.create(minute=str(k % 60)),
                         "clocked": ClockedSchedule.objects.create(clocked_time=now),
                         "solar": SolarSchedule.objects.create(event="sunrise", latitude=k, longitude=k)}
            for kind, schedule in schedules.items():
                PeriodicTask.objects.create(name=f"task {k} {kind}", task="governance.tasks.noop",
                                            one_off=kind == "clocked", **{kind: schedule})

    def requests():
        admin, api = client_as(demo.admin), api_as(demo.auditor)
        export = EvidenceExport.objects.order_by("pk").first().pk  # its download streams a file: not counted
        return {
            "api evidence-exports/": lambda: api.get("/api/v1/evidence-exports/"),
            "api evidence-exports/{id}/": lambda: api.get(f"/api/v1/evidence-exports/{export}/"),
            **{f"admin {label}": lambda label=label: admin.get(reverse(f"admin:{label}_changelist"))
               for label in ADMIN_LISTS},
        }

    assert_same_at_two_sizes(grow, requests)
