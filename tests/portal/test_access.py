"""Who gets in: the portal needs a login, and a change the user may not see is missing (V1)."""
import pytest

from audit.models import AuditEvent


def portal_pages(cr, deployment):
    return [
        ("get", f"/changes/{cr.pk}/"),
        ("get", f"/changes/{cr.pk}/signoff/"),
        ("post", f"/changes/{cr.pk}/signoff/"),
        ("get", f"/changes/{cr.pk}/review/"),
        ("post", f"/changes/{cr.pk}/deployments/"),
        ("post", f"/deployments/{deployment.pk}/finish/"),
        ("post", f"/deployments/{deployment.pk}/rollback/"),
    ]


def test_anonymous_visitors_are_sent_to_the_login_page(demo, changes, client_as):
    anonymous = client_as(None)
    deployment = changes.retry_staging.deployments.get()

    response = anonymous.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"
    for method, url in portal_pages(changes.retry_production, deployment):
        response = getattr(anonymous, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_the_login_page_logs_a_persona_in(demo, client_as):
    client = client_as(None)

    page = client.get("/accounts/login/")
    wrong = client.post("/accounts/login/", {"username": "rev", "password": "nope"})
    right = client.post("/accounts/login/", {"username": "rev", "password": "countersign-demo"})

    assert page.status_code == 200
    assert b"Log in to Countersign" in page.content
    assert wrong.status_code == 200
    assert b"didn't match" in wrong.content
    assert right.status_code == 302 and right["Location"] == "/"
    assert client.get("/").context["user"].username == "rev"


def test_idev_sees_none_of_payments_changes_and_gets_404_on_their_pages(demo, changes, client_as):
    idev = client_as(demo.idev)
    deployment = changes.retry_staging.deployments.get()

    dashboard = idev.get("/")

    assert dashboard.status_code == 200
    for section in ("awaiting_review", "ready_to_deploy", "held_back", "my_requests", "pir_due", "recent"):
        assert dashboard.context[section] == [], section
    for method, url in portal_pages(changes.retry_production, deployment):
        assert getattr(idev, method)(url).status_code == 404, url


def test_a_refused_visit_writes_nothing(demo, changes, client_as):
    before = AuditEvent.objects.count()

    client_as(demo.idev).post(
        f"/changes/{changes.retry_production.pk}/signoff/",
        {"decision": "approve", "password": "countersign-demo", "revision": 1},
    )

    assert AuditEvent.objects.count() == before
    assert not changes.retry_production.approvals.exists()


@pytest.mark.parametrize("url", ["/changes/{cr}/deployments/", "/deployments/{deployment}/finish/",
                                 "/deployments/{deployment}/rollback/"])
def test_write_only_endpoints_refuse_get(demo, changes, client_as, url):
    deployment = changes.retry_staging.deployments.get()

    response = client_as(demo.ops).get(url.format(cr=changes.rotate_production.pk, deployment=deployment.pk))

    assert response.status_code == 405


def test_the_auditor_reads_every_change_but_may_act_on_none(demo, changes, client_as):
    auditor = client_as(demo.auditor)

    page = auditor.get(f"/changes/{changes.rotate_production.pk}/")
    refused = auditor.post(f"/changes/{changes.rotate_production.pk}/deployments/", {})

    assert page.status_code == 200
    assert page.context["start_form"] is None
    assert refused.status_code == 403
    assert [r.code for r in refused.context["refusal"].reasons] == ["missing_duty"]
    assert b"missing_duty" in refused.content
    changes.rotate_production.refresh_from_db()
    assert changes.rotate_production.state == "approved"
