"""C5–C8 through the portal: ops starts a deployment, reports its outcome, rolls it back; every
refusal is shown with its reasons."""
from audit.models import AuditEvent
from releases.models import ChangeRequest, Deployment

S = ChangeRequest.State


def start(client, cr, pipeline_url=""):
    return client.post(f"/changes/{cr.pk}/deployments/", {"pipeline_url": pipeline_url})


def codes(response):
    return [reason.code for reason in response.context["refusal"].reasons]


def test_ops_deploys_the_approved_production_change_and_reports_success(demo, changes, client_as):
    ops = client_as(demo.ops)
    cr = changes.rotate_production

    page = ops.get(f"/changes/{cr.pk}/")
    started = start(ops, cr, "https://ci.example.com/run/99")
    deployment = Deployment.objects.get(change_request=cr)
    running_page = ops.get(f"/changes/{cr.pk}/")
    finished = ops.post(f"/deployments/{deployment.pk}/finish/", {"outcome": "succeeded", "notes": "All green."})

    assert page.context["start_form"] is not None
    assert b"Start deployment" in page.content
    assert started.status_code == 302 and started["Location"] == f"/changes/{cr.pk}/"
    assert running_page.context["finish_form"] is not None
    assert b"Report the outcome of deployment" in running_page.content
    assert finished.status_code == 302
    cr.refresh_from_db()
    deployment.refresh_from_db()
    assert cr.state == S.DEPLOYED
    assert (deployment.deployer, deployment.state, deployment.pipeline_url, deployment.notes) == (
        demo.ops, "succeeded", "https://ci.example.com/run/99", "All green.")
    actions = list(AuditEvent.objects.filter(target_id=str(cr.pk), action__startswith="deployment.")
                   .order_by("sequence").values_list("action", flat=True))
    assert actions == ["deployment.started", "deployment.succeeded"]


def test_a_failed_deployment_closes_the_change(demo, changes, client_as):
    ops = client_as(demo.ops)
    start(ops, changes.standard)
    deployment = Deployment.objects.get(change_request=changes.standard)

    ops.post(f"/deployments/{deployment.pk}/finish/", {"outcome": "failed", "notes": "Health checks failed."})

    changes.standard.refresh_from_db()
    assert changes.standard.state == S.FAILED


def test_ops_rolls_back_a_successful_deployment(demo, changes, client_as):
    ops = client_as(demo.ops)
    deployment = changes.rotate_staging.deployments.get()
    page = ops.get(f"/changes/{changes.rotate_staging.pk}/")

    silent = ops.post(f"/deployments/{deployment.pk}/rollback/", {"reason": ""})
    response = ops.post(f"/deployments/{deployment.pk}/rollback/", {"reason": "Webhook signatures fail."})

    assert page.context["rollback_target"] == deployment
    assert silent.status_code == 400
    assert "reason" in silent.context["rollback_form"].errors
    assert response.status_code == 302
    deployment.refresh_from_db()
    changes.rotate_staging.refresh_from_db()
    assert (deployment.state, deployment.rollback_reason) == ("rolled_back", "Webhook signatures fail.")
    assert changes.rotate_staging.state == S.ROLLED_BACK


def test_an_approver_may_not_deploy_and_sees_why(demo, changes, client_as):
    rev = client_as(demo.rev)
    cr = changes.rotate_production

    page = rev.get(f"/changes/{cr.pk}/")
    response = start(rev, cr)

    assert page.context["start_form"] is None
    assert b"approver_cannot_deploy" in page.content
    assert response.status_code == 403
    assert codes(response) == ["missing_duty", "approver_cannot_deploy"]
    assert not Deployment.objects.filter(change_request=cr).exists()


def test_a_pending_change_cannot_be_deployed(demo, changes, client_as):
    response = start(client_as(demo.ops), changes.retry_production)

    assert response.status_code == 403
    assert codes(response) == ["not_approved"]


def test_only_the_deployer_reports_the_outcome(demo, changes, client_as):
    start(client_as(demo.ops), changes.rotate_production)
    deployment = Deployment.objects.get(change_request=changes.rotate_production)

    response = client_as(demo.rev).post(f"/deployments/{deployment.pk}/finish/", {"outcome": "succeeded"})

    assert response.status_code == 403
    assert codes(response) == ["not_deployer"]
    deployment.refresh_from_db()
    assert deployment.state == "running"


def test_a_finished_deployment_cannot_be_finished_again(demo, changes, client_as):
    deployment = changes.retry_staging.deployments.get()

    response = client_as(demo.ops).post(f"/deployments/{deployment.pk}/finish/", {"outcome": "failed"})

    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]


def test_a_bad_pipeline_url_is_a_field_error(demo, changes, client_as):
    response = start(client_as(demo.ops), changes.rotate_production, "not a url")

    assert response.status_code == 400
    assert "pipeline_url" in response.context["start_form"].errors
    assert not Deployment.objects.filter(change_request=changes.rotate_production).exists()
