"""Decisions from the inbox (issue 18): security (or a manager of the team) approves or rejects a
pending privileged grant where it waits, and security resolves an alert, through the same services
as the admin and the API, with their rules and reason codes; a refusal re-renders the inbox with it
at the top (focused, role="alert") and writes nothing."""
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.alerts import raise_alert
from audit.models import Alert, AuditEvent
from governance import duties
from governance import services as governance
from governance.models import RoleAssignment
from tests.factories import set_control

INBOX = "/inbox/"


def decide_url(grant) -> str:
    return f"/inbox/grants/{grant.pk}/decide/"


def resolve_url(alert) -> str:
    return f"/inbox/alerts/{alert.pk}/resolve/"


@pytest.fixture
def pending(demo):
    """mgr asks for dev2 to review production: privileged, so it waits for a second person (G4)."""
    return governance.role_grant(actor=demo.mgr, user=demo.dev2, role=demo.roles["reviewer"], team=demo.payments,
                                 environment=demo.production, justification="Cover rev in production.",
                                 expires_at=timezone.now() + timedelta(days=30))


@pytest.fixture
def alert(demo):
    return raise_alert("inbox_test", subject="Odd approvals in payments", team="payments")[0]


@pytest.fixture
def nothing_written(db):
    @contextmanager
    def guard():
        def state():
            return (list(RoleAssignment.objects.order_by("pk").values_list("pk", "status", "approved_by_id")),
                    list(Alert.objects.order_by("pk").values_list("pk", "status", "resolved_by_id")),
                    AuditEvent.objects.count())

        before = state()
        yield
        assert state() == before

    return guard


def refusal_codes(response) -> list[str]:
    return [reason.code for reason in response.context["refusal"].reasons]


def assert_refusal_at_the_top(response):
    content = response.content.decode()
    top = content.index('id="refusal"')
    assert 'role="alert" tabindex="-1" autofocus' in content[top:top + 120]
    assert top < content.index("<h2", content.index("</h1>") + 1)  # before every section of the inbox


# --- grants ---------------------------------------------------------------------------------------


def test_security_sees_a_form_for_the_pending_grant_and_approves_it(demo, client_as, pending, messages_in):
    client = client_as(demo.sec)
    page = client.get(INBOX)
    assert f'action="{decide_url(pending)}"' in page.content.decode()

    response = client.post(decide_url(pending), {"decision": "approve", "reason": ""}, follow=True)

    assert response.redirect_chain[-1] == (INBOX, 302)
    assert messages_in(response) == ["You approved dev2's Reviewer grant in Payments (Production); it is in force now."]
    pending.refresh_from_db()
    assert (pending.status, pending.approved_by) == (RoleAssignment.Status.ACTIVE, demo.sec)
    assert pending not in response.context["inbox"].grants
    assert AuditEvent.objects.filter(action="role.grant_approved", actor_username="sec", target_id=str(pending.pk)).count() == 1


def test_rejecting_records_the_reason(demo, client_as, pending, messages_in):
    response = client_as(demo.sec).post(decide_url(pending), {"decision": "reject", "reason": "Not this quarter."},
                                        follow=True)

    assert messages_in(response) == ["You rejected dev2's Reviewer grant in Payments (Production)."]
    pending.refresh_from_db()
    assert (pending.status, pending.end_reason, pending.ended_by) == (
        RoleAssignment.Status.REJECTED, "Not this quarter.", demo.sec)


@pytest.mark.parametrize(("persona", "codes"), [("mgr", ["four_eyes_grant"]), ("dev2", ["four_eyes_grant", "missing_duty"])])
def test_neither_the_requester_nor_the_grantee_approves(demo, client_as, pending, persona, codes, nothing_written):
    with nothing_written():
        response = client_as(getattr(demo, persona)).post(decide_url(pending), {"decision": "approve"})

    assert response.status_code == 403
    assert refusal_codes(response) == codes
    assert response.context["refusal"].title == "Not decided: dev2's Reviewer grant in Payments (Production)"
    assert_refusal_at_the_top(response)


def test_a_conflict_found_at_approval_is_refused(demo, client_as, pending, nothing_written):
    set_control(by=demo.sec, control="governance.conflictrule", duty_a=duties.SUBMIT, duty_b=duties.APPROVE,
                tier="production", description="Authors do not review production changes.")

    with nothing_written():
        response = client_as(demo.sec).post(decide_url(pending), {"decision": "approve"})

    assert response.status_code == 403
    assert refusal_codes(response) == ["sod_conflict"]
    assert "developer in production" in response.context["refusal"].reasons[0].message
    assert_refusal_at_the_top(response)


def test_a_grant_decided_meanwhile_is_a_conflict(demo, client_as, pending, nothing_written):
    governance.role_assignment_approve(actor=demo.admin, assignment=pending)

    with nothing_written():
        response = client_as(demo.sec).post(decide_url(pending), {"decision": "reject", "reason": "Too late."})

    assert response.status_code == 409
    assert refusal_codes(response) == ["invalid_state"]
    assert_refusal_at_the_top(response)


def test_a_grant_without_the_duty_to_decide_it_is_refused(demo, client_as, pending, nothing_written):
    with nothing_written():
        response = client_as(demo.auditor).post(decide_url(pending), {"decision": "approve"})

    assert response.status_code == 403
    assert refusal_codes(response) == ["missing_duty"]


@pytest.mark.parametrize("persona", ["dev", "rev", "ops", "idev"])
def test_a_grant_out_of_sight_is_404(demo, client_as, pending, persona, nothing_written):
    with nothing_written():
        assert client_as(getattr(demo, persona)).post(decide_url(pending), {"decision": "approve"}).status_code == 404


def test_an_unknown_decision_is_400_with_the_field_named(demo, client_as, pending, nothing_written):
    with nothing_written():
        response = client_as(demo.sec).post(decide_url(pending), {"decision": "maybe"})

    assert response.status_code == 400
    assert refusal_codes(response) == ["invalid"]
    assert response.context["refusal"].reasons[0].message.startswith("Decision:")
    assert_refusal_at_the_top(response)


def test_deciding_needs_post_and_a_login(demo, client_as, pending, nothing_written):
    with nothing_written():
        assert client_as(demo.sec).get(decide_url(pending)).status_code == 405
        assert client_as(None).post(decide_url(pending), {"decision": "approve"}).status_code == 302


# --- alerts ---------------------------------------------------------------------------------------


def test_security_resolves_an_alert_from_the_inbox(demo, client_as, alert, messages_in):
    client = client_as(demo.sec)
    assert f'action="{resolve_url(alert)}"' in client.get(INBOX).content.decode()

    response = client.post(resolve_url(alert), {"resolution": "Two reviewers on leave; approvals were fine."},
                           follow=True)

    assert response.redirect_chain[-1] == (INBOX, 302)
    assert messages_in(response) == ["You resolved the alert “Odd approvals in payments”."]
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by, alert.resolution) == (
        Alert.Status.RESOLVED, demo.sec, "Two reviewers on leave; approvals were fine.")
    assert alert not in response.context["inbox"].alerts


def test_nobody_resolves_an_alert_about_their_own_action(demo, client_as, nothing_written):
    own, _ = raise_alert("inbox_test", subject="sec approved at 3 am", actor=demo.sec, team="payments")

    with nothing_written():
        response = client_as(demo.sec).post(resolve_url(own), {"resolution": "It was me; fine."})

    assert response.status_code == 403
    assert refusal_codes(response) == ["own_alert"]
    assert_refusal_at_the_top(response)


def test_a_resolution_is_required(demo, client_as, alert, nothing_written):
    with nothing_written():
        response = client_as(demo.sec).post(resolve_url(alert), {"resolution": "  "})

    assert response.status_code == 400
    assert refusal_codes(response) == ["invalid"]
    assert "Say what was found and done." in response.content.decode()
    assert_refusal_at_the_top(response)


def test_an_alert_resolved_meanwhile_is_a_conflict(demo, client_as, alert, nothing_written):
    from compliance.alerts import alert_resolve

    alert_resolve(actor=demo.sec, alert=alert, resolution="Looked at it.")
    with nothing_written():
        response = client_as(demo.sec).post(resolve_url(alert), {"resolution": "Me too."})

    assert response.status_code == 409
    assert refusal_codes(response) == ["invalid_state"]


def test_readers_of_alerts_without_security_approve_see_no_form_and_are_refused(demo, client_as, alert,
                                                                                 nothing_written):
    client = client_as(demo.auditor)
    page = client.get(INBOX)
    assert alert in page.context["inbox"].alerts and resolve_url(alert) not in page.content.decode()

    with nothing_written():
        response = client.post(resolve_url(alert), {"resolution": "Looked at it."})

    assert response.status_code == 403
    assert refusal_codes(response) == ["missing_duty"]


@pytest.mark.parametrize("persona", ["dev", "mgr", "ops"])
def test_an_alert_is_404_to_those_who_may_not_read_alerts(demo, client_as, alert, persona, nothing_written):
    with nothing_written():
        assert client_as(getattr(demo, persona)).post(resolve_url(alert), {"resolution": "x"}).status_code == 404
