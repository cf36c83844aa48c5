"""C2, C11: a reviewer signs off in the portal by entering their password again; a wrong password
signs nothing and is recorded; every refusal is shown with its reason codes."""
from audit.models import AuditEvent
from governance import services as governance_services
from releases import services
from releases.models import Approval, ChangeRequest

PASSWORD = "countersign-demo"


def sign(client, cr, *, decision="approve", password=PASSWORD, comment="Reviewed the diff.", revision=None):
    return client.post(
        f"/changes/{cr.pk}/signoff/",
        {"decision": decision, "comment": comment, "password": password,
         "revision": revision if revision is not None else cr.revision},
    )


def codes(response):
    return [reason.code for reason in response.context["refusal"].reasons]


def test_the_form_shows_what_is_signed_and_the_checklist(demo, changes, client_as):
    response = client_as(demo.rev).get(f"/changes/{changes.retry_production.pk}/signoff/")

    assert response.status_code == 200
    assert response.context["decision"].allowed
    assert response.context["form"]["revision"].value() == 1
    labels = [check.label for check in response.context["checklist"]]
    assert labels[:2] == ["Approvals of revision 1", "A reviewer from team Payments"]
    assert changes.retry_production.artifact.encode() in response.content
    assert b'type="password"' in response.content


def test_a_wrong_password_signs_nothing_and_is_recorded(demo, changes, client_as):
    cr = changes.retry_production

    response = sign(client_as(demo.rev), cr, password="countersign-dem0")

    assert response.status_code == 400
    assert "That is not your password" in response.context["form"].errors["password"][0]
    assert not Approval.objects.filter(change_request=cr, reviewer=demo.rev).exists()
    cr.refresh_from_db()
    assert cr.state == ChangeRequest.State.PENDING
    event = AuditEvent.objects.get(action="change_request.signoff_failed")
    assert (event.actor, event.target_type, event.target_id) == (demo.rev, "releases.changerequest", str(cr.pk))
    assert event.ip == "127.0.0.1"
    assert b"countersign-dem0" not in response.content  # the typed password is never echoed


def test_the_right_password_records_a_portal_approval(demo, changes, client_as):
    cr = changes.retry_production
    rev = client_as(demo.rev)

    response = sign(rev, cr, comment="Retry is idempotent.")

    assert response.status_code == 302 and response["Location"] == f"/changes/{cr.pk}/"
    approval = Approval.objects.get(change_request=cr, reviewer=demo.rev)
    assert (approval.decision, approval.via, approval.revision, approval.comment) == (
        "approved", "portal", 1, "Retry is idempotent.")
    cr.refresh_from_db()
    assert cr.state == ChangeRequest.State.PENDING  # production needs a second approver
    event = AuditEvent.objects.filter(target_id=str(cr.pk)).order_by("-sequence").first()
    assert (event.action, event.data["via"]) == ("change_request.approval_recorded", "portal")
    page = rev.get(response["Location"])
    assert [str(m) for m in page.context["messages"]] == [
        f"You signed off CR-{cr.pk}; it still needs further approvals."]


def test_the_second_portal_sign_off_approves_the_production_change(demo, changes, client_as):
    cr = changes.retry_production
    sign(client_as(demo.rev), cr)

    response = sign(client_as(demo.rev2), cr)

    assert response.status_code == 302
    cr.refresh_from_db()
    assert cr.state == ChangeRequest.State.APPROVED
    assert list(cr.approvals.values_list("via", flat=True)) == ["portal", "portal"]


def test_the_author_cannot_sign_off_their_own_change(demo, changes, client_as):
    dev = client_as(demo.dev)
    cr = changes.retry_production

    form = dev.get(f"/changes/{cr.pk}/signoff/")
    response = sign(dev, cr)

    assert form.status_code == 200
    assert not form.context["decision"].allowed
    assert b"author_cannot_approve" in form.content
    assert b'type="password"' not in form.content
    assert response.status_code == 403
    assert codes(response) == ["missing_duty", "author_cannot_approve"]  # dev holds no approve duty either
    assert b"The author of a change may not approve or reject it." in response.content
    assert not cr.approvals.exists()


def test_holding_the_approve_duty_does_not_let_an_author_sign_their_change(demo, client_as, submitted):
    governance_services.role_grant(actor=demo.mgr, user=demo.dev, role=demo.roles["reviewer"], team=demo.payments,
                                   environment=demo.staging, justification="dev reviews staging this sprint")
    own = submitted(demo.dev, demo.staging)

    response = sign(client_as(demo.dev), own)

    assert response.status_code == 403
    assert codes(response) == ["author_cannot_approve"]
    assert not own.approvals.exists()


def test_a_contributor_and_a_person_without_the_duty_are_refused_with_every_reason(demo, changes, client_as):
    response = sign(client_as(demo.dev2), changes.retry_production)

    assert response.status_code == 403
    assert codes(response) == ["missing_duty", "contributor_cannot_approve"]


def test_a_reviewer_signs_once_per_revision(demo, changes, client_as):
    rev = client_as(demo.rev)
    sign(rev, changes.retry_production)

    response = sign(rev, changes.retry_production)

    assert response.status_code == 403
    assert codes(response) == ["already_approved"]


def test_a_decided_change_cannot_be_signed_off(demo, changes, client_as):
    response = sign(client_as(demo.sec), changes.rotate_production)

    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]
    assert not changes.rotate_production.approvals.filter(reviewer=demo.sec).exists()


def test_a_sign_off_is_refused_when_the_change_moved_to_a_new_revision(demo, changes, client_as):
    cr = changes.retry_production
    services.change_request_update(actor=demo.dev, change_request=cr, changes={"artifact": "payments-api:2.14.1"})

    response = sign(client_as(demo.rev), cr, revision=1)

    assert response.status_code == 409
    assert codes(response) == ["revision_changed"]
    assert response.context["form"]["revision"].value() == 2
    assert not cr.approvals.exists()


def test_a_rejection_needs_a_reason_and_closes_the_change(demo, changes, client_as):
    rev2 = client_as(demo.rev2)
    cr = changes.retry_production

    silent = sign(rev2, cr, decision="reject", comment="  ")
    response = sign(rev2, cr, decision="reject", comment="No rollback plan.")

    assert silent.status_code == 400
    assert silent.context["form"].errors["comment"] == ["Say why you reject the change."]
    assert response.status_code == 302
    cr.refresh_from_db()
    assert (cr.state, cr.close_reason) == (ChangeRequest.State.REJECTED, "No rollback plan.")
    assert cr.approvals.get().via == "portal"


def test_an_incomplete_form_is_answered_with_field_errors(demo, changes, client_as):
    response = client_as(demo.rev).post(f"/changes/{changes.retry_production.pk}/signoff/", {"decision": "maybe"})

    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"decision", "password", "revision"}
    assert not AuditEvent.objects.filter(action="change_request.signoff_failed").exists()
