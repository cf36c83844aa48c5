"""The change request page: details, the policy checklist for the viewer, approvals per revision,
deployments and the history from the audit trail, in a constant number of queries."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from releases import services
from releases.models import ChangeRequest
from tests.factories import set_control


def test_the_page_shows_details_checklist_approvals_deployments_and_history(demo, changes, client_as):
    cr = changes.retry_staging

    response = client_as(demo.dev).get(f"/changes/{cr.pk}/")

    assert response.status_code == 200
    assert cr.artifact.encode() in response.content
    assert b"https://tickets.example.com/PAY-101" in response.content
    assert [(a.reviewer.username, a.via, a.revision) for a in response.context["approvals"]] == [("rev", "api", 1)]
    assert [(d.deployer.username, d.state) for d in response.context["deployments"]] == [("ops", "succeeded")]
    assert [entry.action for entry in response.context["history"]] == [
        "change_request.created", "change_request.submitted", "change_request.approved",
        "deployment.started", "deployment.succeeded",
    ]
    assert response.context["history"][2].change == "Pending → Approved"


def test_the_checklist_explains_what_production_still_needs(demo, changes, client_as):
    response = client_as(demo.ops).get(f"/changes/{changes.retry_production.pk}/")

    checks = {check.label: check for check in response.context["checklist"]}
    approvals = checks["Approvals of revision 1"]
    assert (approvals.met, approvals.detail, approvals.reason.code) == (False, "0 of 2 required", "not_approved")
    assert checks["A reviewer from team Payments"].met is False
    assert checks["Deployed to staging first"].met is True
    assert checks["No freeze window in force"].met is True
    assert checks["Sign-off"].met is None
    assert response.context["deploy_decision"].codes == ["not_approved"]
    assert b"not_approved" in response.content


def test_the_checklist_names_the_unmet_prior_environment(demo, client_as, submitted):
    cr = submitted(demo.dev, demo.production, title="Skip staging", artifact="payments-api@sha256:" + "9" * 64)

    response = client_as(demo.rev).get(f"/changes/{cr.pk}/")

    prior = {check.label: check for check in response.context["checklist"]}["Deployed to staging first"]
    assert (prior.met, prior.reason.code) == (False, "prior_environment_required")
    assert response.context["approve_decision"].allowed


def test_the_viewers_own_decisions_are_on_the_page(demo, changes, client_as):
    rev = client_as(demo.rev).get(f"/changes/{changes.retry_production.pk}/")
    dev = client_as(demo.dev).get(f"/changes/{changes.retry_production.pk}/")

    assert rev.context["approve_decision"].allowed
    assert f'href="/changes/{changes.retry_production.pk}/signoff/"'.encode() in rev.content
    assert dev.context["approve_decision"].codes == ["missing_duty", "author_cannot_approve"]
    assert b"author_cannot_approve" in dev.content


def test_a_new_revision_shows_earlier_approvals_as_stale(demo, changes, client_as):
    cr = changes.retry_production
    services.change_request_approve(actor=demo.rev, change_request=cr, via="portal")
    services.change_request_update(actor=demo.dev, change_request=cr, changes={"artifact": "payments-api:2.14.1"})

    response = client_as(demo.rev2).get(f"/changes/{cr.pk}/")

    [approval] = response.context["approvals"]
    assert (approval.revision, approval.stale) == (1, True)
    assert b"Stale" in response.content
    assert response.context["history"][-1].label == "New revision"


def test_failed_sign_offs_are_in_the_history_only_for_audit_viewers(demo, changes, client_as):
    cr = changes.retry_production
    services.signoff_failed(actor=demo.rev, change_request=cr)

    team_view = client_as(demo.rev2).get(f"/changes/{cr.pk}/")
    audit_view = client_as(demo.auditor).get(f"/changes/{cr.pk}/")

    assert "change_request.signoff_failed" not in [e.action for e in team_view.context["history"]]
    assert "change_request.signoff_failed" in [e.action for e in audit_view.context["history"]]
    assert not team_view.context["audit_viewer"] and audit_view.context["audit_viewer"]
    sequence = AuditEvent.objects.get(action="change_request.signoff_failed").sequence
    assert f"#{sequence}".encode() in audit_view.content


def page_queries(client, cr) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/changes/{cr.pk}/").status_code == 200
    return len(queries)


def test_the_page_costs_the_same_queries_at_two_sizes(demo, client_as, approved_in_staging):
    """More revisions, approvals, contributors and history do not add queries."""
    ops, rev, auditor = client_as(demo.ops), client_as(demo.rev), client_as(demo.auditor)
    cr = approved_in_staging(contributors=["dev2"])
    small = [page_queries(client, cr) for client in (ops, rev, auditor)]

    for n in range(2, 6):
        services.change_request_update(
            actor=demo.dev, change_request=cr,
            changes={"artifact": f"payments-api:2.15.{n}", "contributors": ["dev2", "mgr", "auditor"][: n - 1]},
        )
        services.signoff_failed(actor=demo.rev2, change_request=cr)
        services.change_request_approve(actor=demo.rev if n % 2 else demo.rev2, change_request=cr)
    cr.refresh_from_db()
    large = [page_queries(client, cr) for client in (ops, rev, auditor)]

    assert (cr.revision, cr.state, cr.approvals.count(), cr.contributors.count()) == (5, "approved", 5, 3)
    assert large == small


def test_only_web_addresses_become_links(demo, client_as):
    with pytest.raises(ValidationError):  # the service refuses anything but http(s) links ...
        services.change_request_create(
            actor=demo.dev, team=demo.payments, environment=demo.staging, title="Odd ticket",
            artifact="payments-api:1.0.0", ticket_url="javascript:alert(document.cookie)",
        )
    cr = services.change_request_create(
        actor=demo.dev, team=demo.payments, environment=demo.staging, title="Odd ticket",
        artifact="payments-api:1.0.0", ticket_url="https://tickets.example.com/1",
    )
    # ... and the page still never links a stored value that is not one (rows older than the check).
    ChangeRequest.objects.filter(pk=cr.pk).update(ticket_url="javascript:alert(document.cookie)")

    response = client_as(demo.rev).get(f"/changes/{cr.pk}/")

    assert response.status_code == 200
    assert b'href="javascript:' not in response.content
    assert b"javascript:alert(document.cookie)" in response.content


def test_a_freeze_shows_in_the_checklist_and_takes_the_deploy_form_away(demo, changes, client_as):
    at = timezone.now()
    set_control(by=demo.sec, control="releases.freezewindow", name="Black Friday", starts_at=at - timedelta(hours=1), ends_at=at + timedelta(days=2), environments=[demo.production])

    response = client_as(demo.ops).get(f"/changes/{changes.rotate_production.pk}/")

    freeze = {check.label: check for check in response.context["checklist"]}["No freeze window in force"]
    assert (freeze.met, freeze.detail, freeze.reason.code) == (False, "frozen: Black Friday", "freeze_window_active")
    assert response.context["start_form"] is None
    assert b"freeze_window_active" in response.content
