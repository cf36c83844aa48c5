"""``deployment-reports/`` speaks only of change requests the reporter may see (issue 14, class 8;
RULES.md V1): an operator of payments who reports an artifact of identity's approved change learns
neither its id nor that it exists. The answer is the one an unknown artifact gets; security's alert
says what really happened."""
from audit.models import Alert, AuditEvent
from releases import services

REPORTS = "/api/v1/deployment-reports/"


def _identity_change_approved_on_staging(demo):
    cr = services.change_request_create(actor=demo.idev, team=demo.identity, environment=demo.staging,
                                        title="Identity: rotate session keys", artifact="identity-api:7")
    cr = services.change_request_submit(actor=demo.idev, change_request=cr)
    return services.change_request_approve(actor=demo.sec, change_request=cr, comment="Fine.",
                                            revision=cr.revision)


def _report(client, artifact):
    response = client.post(REPORTS, {"environment": "staging", "artifact": artifact}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_another_teams_change_is_neither_named_nor_confirmed(demo, api_as):
    identity_change = _identity_change_approved_on_staging(demo)
    assert identity_change.state == "approved"
    client = api_as(demo.ops)
    assert client.get(f"/api/v1/change-requests/{identity_change.pk}/").status_code == 404  # V1

    covered_elsewhere = _report(client, "identity-api:7")
    unknown = _report(client, "identity-api:never-approved")

    assert covered_elsewhere["change_request"] is None and covered_elsewhere["registered"] is False
    assert covered_elsewhere.keys() == unknown.keys()
    assert {k: v for k, v in covered_elsewhere.items() if k != "alert"} == \
           {k: v for k, v in unknown.items() if k != "alert"}
    assert str(identity_change.pk) not in str(covered_elsewhere)


def test_security_learns_which_change_the_artifact_belongs_to(demo, api_as):
    identity_change = _identity_change_approved_on_staging(demo)
    answer = _report(api_as(demo.ops), "identity-api:7")
    alert = Alert.objects.get(pk=answer["alert"])
    assert (alert.kind, alert.severity, alert.actor) == ("unregistered_deployment", "critical", demo.ops)
    assert alert.details["out_of_view_change_request"] == identity_change.pk
    assert f"CR-{identity_change.pk}" in alert.subject
    event = AuditEvent.objects.get(action="deployment.reported")
    assert event.data["registered"] is False and event.data["out_of_view_change_request"] == identity_change.pk


def test_a_change_the_reporter_sees_is_still_named(demo, api_as):
    cr = services.change_request_create(actor=demo.dev, team=demo.payments, environment=demo.staging,
                                        title="Payments: retry budget", artifact="payments-api:31")
    cr = services.change_request_submit(actor=demo.dev, change_request=cr)
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, comment="Fine.",
                                            revision=cr.revision)
    assert _report(api_as(demo.ops), "payments-api:31") == {"registered": True, "change_request": cr.pk,
                                                             "alert": None}
