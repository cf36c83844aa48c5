"""Alerts over the API (RULES.md V3, E2): read by security and audit viewers, resolved by security
through ``alert_resolve``; everyone else is told the list needs a duty, and sees no single alert."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.alerts import raise_alert
from audit.models import Alert, AuditEvent
from tests.alerts_api.conftest import codes

ALERTS = "/api/v1/alerts/"


def alert_url(alert, verb: str = "") -> str:
    return f"{ALERTS}{alert.pk}/{verb + '/' if verb else ''}"


@pytest.mark.parametrize("persona", ["sec", "auditor", "admin"])
def test_security_and_audit_viewers_read_alerts_newest_first(demo, api_as, alerts, persona):
    client = api_as(getattr(demo, persona))

    listed = client.get(ALERTS).json()["results"]
    one = client.get(alert_url(alerts.drift)).json()

    assert [a["id"] for a in listed] == [alerts.dormant.pk, alerts.drift.pk, alerts.rubber.pk]
    assert one == {
        "id": alerts.drift.pk, "kind": "permission_drift", "severity": "high",
        "subject": "dev holds permissions no grant explains", "details": {"unexplained": ["duty_deploy:3"]},
        "actor": "dev", "environment": "", "team": "", "status": "open", "created_at": one["created_at"],
        "resolution": "", "resolved_by": None, "resolved_at": None,
    }


@pytest.mark.parametrize("persona", ["dev", "rev", "ops", "mgr", "idev"])
def test_others_are_told_the_list_needs_a_duty_and_see_no_alert(demo, api_as, alerts, persona):
    client = api_as(getattr(demo, persona))

    listed = client.get(ALERTS)
    one = client.get(alert_url(alerts.drift))

    assert listed.status_code == 403
    assert codes(listed) == ["missing_duty"]
    assert one.status_code == 404 and set(one.json()) == {"detail"}


def test_alerts_filter_by_kind_severity_and_status(demo, api_as, alerts):
    client = api_as(demo.sec)

    def ids(**params):
        return [a["id"] for a in client.get(ALERTS, params).json()["results"]]

    assert ids(kind="rubber_stamp") == [alerts.rubber.pk]
    assert ids(severity="high") == [alerts.drift.pk]
    assert ids(status="open") == [alerts.drift.pk, alerts.rubber.pk]
    assert ids(status="resolved", severity="low") == [alerts.dormant.pk]
    assert client.get(ALERTS, {"severity": "extreme"}).status_code == 400


def test_security_resolves_an_alert(demo, api_as, alerts):
    response = api_as(demo.sec).post(alert_url(alerts.rubber, "resolve"),
                                     {"resolution": "Pair-reviewed beforehand; fine."}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["resolved_by"], body["resolution"]) == (
        "resolved", "sec", "Pair-reviewed beforehand; fine.")
    event = AuditEvent.objects.get(action="alert.resolved")
    assert (event.actor_username, event.target_id, event.data["kind"]) == ("sec", str(alerts.rubber.pk), "rubber_stamp")


@pytest.mark.parametrize("persona", ["auditor", "admin"])
def test_readers_without_security_approve_may_not_resolve(demo, api_as, alerts, nothing_written, persona):
    client = api_as(getattr(demo, persona))

    with nothing_written():
        response = client.post(alert_url(alerts.rubber, "resolve"), {"resolution": "Looks fine."}, format="json")

    assert response.status_code == 403
    assert codes(response) == ["missing_duty"]


def test_an_alert_out_of_sight_is_404_before_anything_else(demo, api_as, alerts, nothing_written):
    client = api_as(demo.mgr)
    with nothing_written():
        response = client.post(alert_url(alerts.rubber, "resolve"), {"resolution": "x"}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("body", [{}, {"resolution": ""}, {"resolution": "   "}, {"resolution": ["a"]}])
def test_a_resolution_is_required(demo, api_as, alerts, nothing_written, body):
    client = api_as(demo.sec)
    with nothing_written():
        response = client.post(alert_url(alerts.rubber, "resolve"), body, format="json")

    assert response.status_code == 400
    assert "resolution" in response.json()


def test_a_resolved_alert_is_a_conflict(demo, api_as, alerts, nothing_written):
    client = api_as(demo.sec)
    with nothing_written():
        response = client.post(alert_url(alerts.dormant, "resolve"), {"resolution": "again"}, format="json")

    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]


@pytest.mark.parametrize("path", [f"{ALERTS}0/", f"{ALERTS}x/", f"{ALERTS}99999999999999999999/"])
def test_ids_that_cannot_exist_are_404(demo, api_as, path):
    assert api_as(demo.sec).get(path).status_code == 404


def test_nobody_gets_401(db):
    from rest_framework.test import APIClient

    assert APIClient().get(ALERTS).status_code == 401
    assert APIClient().post(f"{ALERTS}1/resolve/", {"resolution": "x"}, format="json").status_code == 401


@pytest.mark.parametrize("persona", ["sec", "auditor"])
def test_the_list_costs_the_same_queries_at_two_sizes(demo, client_as, alerts, persona):
    # A session, not a key: a key records its last use once a minute, which would add an UPDATE.
    client = client_as(getattr(demo, persona))

    def list_queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(ALERTS, {"limit": 500})
        assert response.status_code == 200
        return len(captured), len(response.json()["results"])

    def raise_more(count, start):
        for n in range(start, start + count):
            actor = demo.dev if n % 2 else demo.rev
            alert, _ = raise_alert("rubber_stamp", subject=f"fast approval {n}", actor=actor, dedupe_key=f"rs:{n}")
            if n % 3 == 0:
                Alert.objects.filter(pk=alert.pk).update(status="resolved", resolved_by=demo.sec, resolution="ok")

    list_queries()
    small, small_rows = list_queries()
    raise_more(40, 0)
    large, large_rows = list_queries()

    assert large_rows == small_rows + 40
    assert large == small
