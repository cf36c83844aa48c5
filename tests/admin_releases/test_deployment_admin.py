"""Deployments in the admin: read-only records, visible as their change requests are (V1)."""
from releases.demo import MARKER
from releases.models import Deployment
from tests.admin_releases.shortcuts import admin_url


def staged_deployment(demo) -> Deployment:
    return Deployment.objects.get(change_request__title=MARKER, environment=demo.staging)


def test_the_auditor_reads_a_deployment_and_cannot_change_it(demo, signed_in, nothing_written):
    deployment = staged_deployment(demo)
    client = signed_in(demo.auditor)

    listing = client.get(admin_url(Deployment, "changelist"))
    detail = client.get(admin_url(Deployment, "change", deployment.pk))
    history = client.get(admin_url(Deployment, "history", deployment.pk))
    with nothing_written():
        posted = client.post(admin_url(Deployment, "change", deployment.pk), {"state": "failed", "_save": "Save"})

    assert {d.pk for d in listing.context["cl"].result_list} == set(Deployment.objects.values_list("pk", flat=True))
    assert detail.status_code == 200
    assert 'name="state"' not in detail.content.decode()
    assert "Demo rollout." in detail.content.decode()
    assert history.status_code == 200
    assert posted.status_code == 403


def test_the_change_page_links_its_deployments(demo, signed_in):
    deployment = staged_deployment(demo)

    page = signed_in(demo.auditor).get(admin_url(type(deployment.change_request), "change",
                                                 deployment.change_request_id)).content.decode()

    assert admin_url(Deployment, "change", deployment.pk) in page


def test_identity_staff_see_no_payments_deployment(demo, signed_in):
    demo.idev.is_staff = True
    demo.idev.save(update_fields=["is_staff"])
    deployment = staged_deployment(demo)
    client = signed_in(demo.idev)

    assert list(client.get(admin_url(Deployment, "changelist")).context["cl"].result_list) == []
    assert client.get(admin_url(Deployment, "change", deployment.pk)).status_code == 302
    assert client.get(admin_url(Deployment, "history", deployment.pk)).status_code == 404
