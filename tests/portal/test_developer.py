"""The developer's portal (issue 18): a developer opens a change with the change form's fields, sees
the policy checklist, submits; a reviewer asks for changes (signed like a decision); the developer
revises, resubmits, withdraws; an operator retries a failed deployment; an author sends a change
whose approvals expired back for review. The same services as the API, refusals with their codes."""
from datetime import timedelta

import pytest

from audit.models import AuditEvent
from releases import services
from releases.models import Approval, ChangeRequest
from tests.portal.test_signoff import PASSWORD
from tests.releases.conftest import nothing_written  # noqa: F401 (fixture)

S = ChangeRequest.State
FORM = {"title": "Tune the connection pool", "team": "", "environment": "", "change_type": "normal",
        "risk": "medium", "artifact": "payments-api:2.16.0", "description": "Pool from 10 to 20.",
        "implementation_plan": "1. Deploy.\r\n2. Watch p99.", "backout_plan": "Redeploy 2.15.",
        "risk_impact": "Checkout latency if wrong.", "planned_start": "2030-01-08T10:00",
        "planned_end": "2030-01-08T11:00", "affected_service": "payments-api",
        "ticket_url": "https://tickets.example.com/PAY-120", "source_url": "https://github.com/acme/payments/pull/9",
        "contributors": "dev2", "emergency_reason": ""}


def form(demo, **changes):
    return {**FORM, "team": demo.payments.pk, "environment": demo.staging.pk, **changes}


def test_the_nav_offers_a_new_change_to_those_who_may_open_one(demo, client_as):
    assert b'href="/changes/new/"' in client_as(demo.dev).get("/").content
    assert b'href="/changes/new/"' not in client_as(demo.rev).get("/").content
    assert b'href="/changes/"' in client_as(demo.rev).get("/").content


def test_a_developer_opens_a_draft_with_the_change_form(demo, client_as):
    client = client_as(demo.dev)
    page = client.get("/changes/new/")
    assert page.status_code == 200
    assert [team.slug for team in page.context["form"].fields["team"].queryset] == ["payments"]
    for name in ("implementation_plan", "backout_plan", "risk_impact", "planned_start", "affected_service"):
        assert f'<label for="id_{name}"'.encode() in page.content

    response = client.post("/changes/new/", form(demo))

    cr = ChangeRequest.objects.get(title="Tune the connection pool")
    assert response.status_code == 302 and response["Location"] == f"/changes/{cr.pk}/"
    assert (cr.state, cr.author, cr.backout_plan, cr.affected_service) == (S.DRAFT, demo.dev, "Redeploy 2.15.",
                                                                           "payments-api")
    assert cr.planned_start.isoformat() == "2030-01-08T10:00:00+00:00"
    assert [u.username for u in cr.contributors.all()] == ["dev2"]
    assert AuditEvent.objects.filter(action="change_request.created", target_id=str(cr.pk)).count() == 1
    # The draft's page: the checklist and a Submit button, with the form's fields shown.
    page = client.get(f"/changes/{cr.pk}/")
    assert page.context["author_part"].submit.allowed
    assert b"Submit for review" in page.content and b"Policy checklist" in page.content
    assert b"Redeploy 2.15." in page.content and b"https://github.com/acme/payments/pull/9" in page.content


def test_bad_input_is_shown_on_the_fields_and_focus_goes_to_the_first(demo, client_as, nothing_written):
    client = client_as(demo.dev)
    with nothing_written():
        response = client.post("/changes/new/", form(demo, title=" ", planned_end="2030-01-08T09:00",
                                                     change_type="emergency"))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) >= {"title"}
    html = response.content.decode()
    assert 'aria-describedby="id_title_error"' in html and 'id="id_title_error"' in html
    assert 'autofocus aria-invalid="true"' in html or "autofocus" in html.split('id="id_title"')[0].rsplit("<", 1)[1]
    assert '<a href="#id_title">' in html  # the summary links to the field

    with nothing_written():
        backwards = client.post("/changes/new/", form(demo, planned_end="2030-01-08T09:00"))
        emergency = client.post("/changes/new/", form(demo, change_type="emergency"))
    assert backwards.status_code == 400 and "planned_end" in backwards.context["form"].errors
    assert emergency.status_code == 400 and "emergency_reason" in emergency.context["form"].errors


def test_a_refusal_of_the_service_is_shown_with_its_codes(demo, client_as, nothing_written):
    """rev holds no submit: the service says so (403), nothing is written."""
    with nothing_written():
        response = client_as(demo.rev).post("/changes/new/", form(demo, team=demo.payments.pk))
    # rev is a member of payments; the service refuses for the missing duty.
    assert response.status_code == 403
    assert "missing_duty" in [r.code for r in response.context["refusal"].reasons]


def test_submit_request_changes_revise_resubmit(demo, client_as):
    dev, rev = client_as(demo.dev), client_as(demo.rev)
    dev.post("/changes/new/", form(demo, contributors=""))
    cr = ChangeRequest.objects.get(title="Tune the connection pool")

    assert dev.post(f"/changes/{cr.pk}/submit/").status_code == 302
    assert ChangeRequest.objects.get(pk=cr.pk).state == S.PENDING

    page = rev.get(f"/changes/{cr.pk}/")
    assert f'href="/changes/{cr.pk}/signoff/?decision=request_changes"'.encode() in page.content
    signoff = rev.get(f"/changes/{cr.pk}/signoff/?decision=request_changes")
    assert signoff.context["form"]["decision"].value() == "request_changes"
    # Like a rejection: a comment and the password re-entered.
    no_comment = rev.post(f"/changes/{cr.pk}/signoff/", {"decision": "request_changes", "comment": "",
                                                          "password": PASSWORD, "revision": 1})
    assert no_comment.status_code == 400 and "comment" in no_comment.context["form"].errors
    wrong = rev.post(f"/changes/{cr.pk}/signoff/", {"decision": "request_changes", "comment": "Add a rollback test.",
                                                     "password": "nope", "revision": 1})
    assert wrong.status_code == 400 and ChangeRequest.objects.get(pk=cr.pk).state == S.PENDING
    asked = rev.post(f"/changes/{cr.pk}/signoff/", {"decision": "request_changes", "comment": "Add a rollback test.",
                                                     "password": PASSWORD, "revision": 1})
    assert asked.status_code == 302
    assert ChangeRequest.objects.get(pk=cr.pk).state == S.CHANGES_REQUESTED
    assert Approval.objects.get(change_request=cr).via == "portal"

    page = dev.get(f"/changes/{cr.pk}/")
    assert page.context["author_part"].resubmit and b"Resubmit for review" in page.content
    edit = dev.get(f"/changes/{cr.pk}/edit/")
    assert edit.status_code == 200 and edit.context["form"]["backout_plan"].value() == "Redeploy 2.15."
    data = {name: edit.context["form"][name].value() or "" for name in edit.context["form"].fields}
    data["backout_plan"] = "Redeploy 2.15; rollback tested in staging."
    data["planned_start"], data["planned_end"] = "2030-01-08T10:00", "2030-01-08T11:00"
    assert dev.post(f"/changes/{cr.pk}/edit/", data).status_code == 302
    revised = ChangeRequest.objects.get(pk=cr.pk)
    assert (revised.state, revised.revision) == (S.CHANGES_REQUESTED, 2)

    assert dev.post(f"/changes/{cr.pk}/submit/").status_code == 302
    assert ChangeRequest.objects.get(pk=cr.pk).state == S.PENDING


def test_only_the_author_edits_and_submits(demo, client_as, nothing_written):
    cr = services.change_request_create(actor=demo.dev, team=demo.payments, environment=demo.staging,
                                        title="Mine", artifact="payments-api:9")
    other = client_as(demo.dev2)
    page = other.get(f"/changes/{cr.pk}/")
    assert not page.context["author_part"].any and b"Submit for review" not in page.content
    with nothing_written():
        submitted = other.post(f"/changes/{cr.pk}/submit/")
        edited = other.post(f"/changes/{cr.pk}/edit/", {"title": "Theirs", "artifact": "payments-api:9"})
    assert submitted.status_code == 403 and [r.code for r in submitted.context["refusal"].reasons] == ["not_author"]
    assert edited.status_code == 403
    assert client_as(demo.idev).get(f"/changes/{cr.pk}/edit/").status_code == 404


def test_the_author_withdraws_from_review(demo, client_as, submitted, nothing_written):
    cr = submitted(demo.dev, demo.staging)
    dev = client_as(demo.dev)
    assert b'action="/changes/%d/withdraw/"' % cr.pk in dev.get(f"/changes/{cr.pk}/").content

    assert dev.post(f"/changes/{cr.pk}/withdraw/", {"reason": "Not ready."}).status_code == 302

    assert (ChangeRequest.objects.get(pk=cr.pk).state, ChangeRequest.objects.get(pk=cr.pk).revision) == (S.DRAFT, 2)
    with nothing_written():
        again = dev.post(f"/changes/{cr.pk}/withdraw/")
    assert again.status_code == 409


def test_an_operator_retries_a_failed_deployment(demo, client_as, approved_in_staging, nothing_written):
    cr = approved_in_staging()
    deployment = services.deployment_start(actor=demo.ops, change_request=cr)
    services.deployment_finish(actor=demo.ops, deployment=deployment, outcome="failed")
    ops = client_as(demo.ops)

    page = ops.get(f"/changes/{cr.pk}/")
    assert page.context["retry_decision"].allowed and b"Retry deployment" in page.content
    dev_page = client_as(demo.dev).get(f"/changes/{cr.pk}/")
    assert dev_page.context["retry_decision"] is None  # holds no deploy: nothing to offer
    with nothing_written():
        refused = client_as(demo.rev).post(f"/changes/{cr.pk}/retry/", {})
        bad = ops.post(f"/changes/{cr.pk}/retry/", {"retry-pipeline_url": "not a link"})
    assert refused.status_code == 403 and "approver_cannot_deploy" in [r.code for r in refused.context["refusal"].reasons]
    assert bad.status_code == 400

    response = ops.post(f"/changes/{cr.pk}/retry/", {"retry-pipeline_url": "https://ci.example.com/run/7"})

    assert response.status_code == 302
    assert ChangeRequest.objects.get(pk=cr.pk).state == S.DEPLOYING
    assert cr.deployments.count() == 2


def test_an_author_sends_an_expired_change_back_for_review(demo, client_as, approved_in_staging, nothing_written):
    cr = approved_in_staging()
    dev = client_as(demo.dev)
    assert not dev.get(f"/changes/{cr.pk}/").context["author_part"].re_review
    with nothing_written():
        early = dev.post(f"/changes/{cr.pk}/re-review/")
    assert early.status_code == 409

    Approval.objects.filter(change_request=cr).update(created_at=cr.approved_at - timedelta(days=8))
    page = dev.get(f"/changes/{cr.pk}/")
    assert page.context["author_part"].re_review and b"Send back for review" in page.content
    assert dev.post(f"/changes/{cr.pk}/re-review/", {"comment": "Still wanted."}).status_code == 302
    assert ChangeRequest.objects.get(pk=cr.pk).state == S.PENDING


def test_a_failed_change_whose_approvals_expired_is_no_dead_end(demo, client_as, approved_in_staging):
    """The retry is refused once the approvals expired (``approvals_expired``, "ask for a new
    review"): the author sends the failed change back for review, and after a new sign-off the
    operator retries it."""
    cr = approved_in_staging()
    deployment = services.deployment_start(actor=demo.ops, change_request=cr)
    services.deployment_finish(actor=demo.ops, deployment=deployment, outcome="failed")
    Approval.objects.filter(change_request=cr).update(created_at=cr.approved_at - timedelta(days=8))
    ops, dev = client_as(demo.ops), client_as(demo.dev)
    assert "approvals_expired" in [r.code for r in ops.get(f"/changes/{cr.pk}/").context["retry_decision"].reasons]

    page = dev.get(f"/changes/{cr.pk}/")
    assert page.context["author_part"].re_review and b"Send back for review" in page.content
    response = dev.post(f"/changes/{cr.pk}/re-review/", {"comment": "The receivers are fixed; retry wanted."})

    assert response.status_code == 302
    cr = ChangeRequest.objects.get(pk=cr.pk)
    assert (cr.state, cr.revision, cr.closed_at) == (S.PENDING, 2, None)
    event = AuditEvent.objects.filter(target_id=str(cr.pk), action="change_request.re_review_requested").get()
    assert (event.data["from_state"], event.data["to_state"]) == ("failed", "pending")
    cr = services.change_request_approve(actor=demo.rev, change_request=cr, revision=2)
    assert services.deployment_start(actor=demo.ops, change_request=cr).revision == 2


@pytest.mark.parametrize("url", ["/changes/{pk}/submit/", "/changes/{pk}/withdraw/", "/changes/{pk}/re-review/",
                                 "/changes/{pk}/retry/"])
def test_the_actions_take_only_post(demo, client_as, changes, url):
    assert client_as(demo.dev).get(url.format(pk=changes.draft.pk)).status_code == 405
