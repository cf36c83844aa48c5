"""E2: deploy tools report what they deployed; an artifact no approved change covers raises a
critical alert, one that is covered does not."""
from audit.models import Alert, AuditEvent
from releases.models import ChangeRequest


def test_a_registered_artifact_raises_nothing(demo, api_as):
    cr = ChangeRequest.objects.get(state="approved", environment=demo.production)
    response = api_as(demo.ops).post("/api/v1/deployment-reports/",
                                     {"environment": "production", "artifact": cr.artifact, "source": "argo"},
                                     format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"registered": True, "change_request": cr.pk, "alert": None}
    assert not Alert.objects.filter(kind="unregistered_deployment").exists()
    assert AuditEvent.objects.filter(action="deployment.reported", data__registered=True).count() == 1


def test_an_unregistered_artifact_raises_a_critical_alert(demo, api_as):
    response = api_as(demo.ops).post("/api/v1/deployment-reports/",
                                     {"environment": "production", "artifact": "payments-api:hotfix-by-hand"},
                                     format="json")
    assert response.status_code == 201
    alert = Alert.objects.get(kind="unregistered_deployment")
    assert response.json()["alert"] == alert.pk and alert.severity == "critical"
    assert alert.environment == "production" and alert.details["artifact"] == "payments-api:hotfix-by-hand"


def test_reporting_needs_the_deploy_duty_and_writes_nothing_otherwise(demo, api_as):
    client = api_as(demo.dev)
    events = AuditEvent.objects.count()
    response = client.post("/api/v1/deployment-reports/",
                                     {"environment": "production", "artifact": "x"}, format="json")
    assert response.status_code == 403 and response.json()["reasons"][0]["code"] == "missing_duty"
    assert AuditEvent.objects.count() == events and not Alert.objects.exists()


def test_bad_input_is_a_400(demo, api_as):
    response = api_as(demo.ops).post("/api/v1/deployment-reports/", {"environment": "nowhere"}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"environment", "artifact"}
