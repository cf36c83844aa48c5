"""One reporter cannot flood security with critical alerts (issue 14, class 8; docs/rules.md E2):
each artifact alerts once while its alert is open, a reporter raises at most
``COUNTERSIGN_DEPLOYMENT_REPORT_ALERTS_PER_HOUR`` unregistered_deployment alerts in an hour, and
the reports beyond that share one open deployment_report_flood alert about the reporter. Every
report is still recorded."""
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Alert, AuditEvent, NotificationChannel, OutboxMessage
from governance import services as governance
from releases import services

REPORTS = "/api/v1/deployment-reports/"


@pytest.fixture(autouse=True)
def limit(settings):
    settings.COUNTERSIGN_DEPLOYMENT_REPORT_ALERTS_PER_HOUR = 3
    return 3


def _report(client, artifact):
    response = client.post(REPORTS, {"environment": "staging", "artifact": artifact}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["alert"]


def _alerts(kind):
    return Alert.objects.filter(kind=kind)


def test_the_same_artifact_alerts_once_while_its_alert_is_open(demo, api_as):
    client = api_as(demo.ops)
    first = _report(client, "web:by-hand")
    assert _report(client, "web:by-hand") == first
    assert _alerts("unregistered_deployment").count() == 1
    # Counted once: the limit still allows two more.
    assert len({_report(client, "web:a"), _report(client, "web:b")}) == 2
    assert not _alerts("deployment_report_flood").exists()


def test_past_the_limit_reports_share_one_flood_alert(demo, api_as, django_capture_on_commit_callbacks):
    NotificationChannel.objects.create(name="security", kind="email", target="security@example.com")
    client = api_as(demo.ops)
    with django_capture_on_commit_callbacks(execute=True):
        individual = [_report(client, f"web:{n}") for n in range(3)]
        folded = [_report(client, f"web:{n}") for n in range(3, 10)]
    assert len(set(individual)) == 3 and len(set(folded)) == 1
    flood = Alert.objects.get(pk=folded[0])
    assert (flood.kind, flood.severity, flood.actor) == ("deployment_report_flood", "critical", demo.ops)
    assert _alerts("unregistered_deployment").count() == 3
    # Four alerts, four notifications, however many reports; every report is on the record.
    assert OutboxMessage.objects.filter(topic="notification.deliver").count() == 4
    assert AuditEvent.objects.filter(action="deployment.reported", actor=demo.ops).count() == 10


def test_the_limit_is_per_reporter_and_per_hour(demo, api_as):
    now = timezone.now()
    for n in range(4):
        services.deployment_report(actor=demo.ops, environment=demo.staging, artifact=f"web:{n}", at=now)
    assert _alerts("deployment_report_flood").count() == 1

    # Another operator is not held back by ops's reports.
    governance.role_grant(actor=demo.mgr, user=demo.dev2, role=demo.roles["operations"], team=demo.payments,
                          environment=demo.staging, justification="Covers for ops.")
    theirs = services.deployment_report(actor=demo.dev2, environment=demo.staging, artifact="web:dev2", at=now)
    assert Alert.objects.get(pk=theirs["alert"]).kind == "unregistered_deployment"

    # An hour later ops's earlier alerts no longer count.
    later = services.deployment_report(actor=demo.ops, environment=demo.staging, artifact="web:later",
                                       at=now + timedelta(minutes=61))
    assert Alert.objects.get(pk=later["alert"]).kind == "unregistered_deployment"
