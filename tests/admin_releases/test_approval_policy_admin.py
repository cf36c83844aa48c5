"""Approval policies in the admin: security and superusers change them through
``approval_policy_save`` (audited); nobody else does, and nobody deletes one."""
from releases.admin import ApprovalPolicyForm
from releases.models import ApprovalPolicy
from tests.admin_releases.shortcuts import admin_url, last_event, posted


def production_policy(demo) -> ApprovalPolicy:
    return ApprovalPolicy.objects.get(environment=demo.production)


def test_security_raises_the_production_policy_through_the_service(demo, signed_in):
    policy = production_policy(demo)

    response = signed_in(demo.sec).post(
        admin_url(ApprovalPolicy, "change", policy.pk), posted(policy, min_approvals=3, min_security_approvals=1)
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert (policy.min_approvals, policy.min_security_approvals) == (3, 1)
    event = last_event("approval_policy.updated")
    assert event.actor == demo.sec
    assert event.environment == "production"
    assert event.data["min_approvals"] == 3
    assert policy.history.first().history_user == demo.sec


def test_saving_an_unchanged_policy_records_nothing(demo, signed_in, nothing_written):
    policy = production_policy(demo)

    with nothing_written():
        response = signed_in(demo.sec).post(admin_url(ApprovalPolicy, "change", policy.pk), posted(policy))

    assert response.status_code == 302


def test_a_manager_without_security_sees_the_policy_but_cannot_change_it(demo, signed_in, nothing_written):
    policy = production_policy(demo)
    client = signed_in(demo.mgr)

    page = client.get(admin_url(ApprovalPolicy, "change", policy.pk))
    with nothing_written():
        refused = client.post(admin_url(ApprovalPolicy, "change", policy.pk), posted(policy, min_approvals=0))

    assert page.status_code == 200
    assert 'name="min_approvals"' not in page.content.decode()
    assert refused.status_code == 403
    assert client.get(admin_url(ApprovalPolicy, "add")).status_code == 403


def test_the_environment_of_a_policy_is_fixed_once_created(demo, signed_in):
    policy = production_policy(demo)

    page = signed_in(demo.sec).get(admin_url(ApprovalPolicy, "change", policy.pk)).content.decode()

    assert 'name="min_approvals"' in page
    assert 'name="environment"' not in page


def test_a_second_policy_for_an_environment_is_a_form_error(demo, signed_in, nothing_written):
    duplicate = ApprovalPolicy(environment=demo.production, min_approvals=0)

    with nothing_written():
        response = signed_in(demo.sec).post(admin_url(ApprovalPolicy, "add"), posted(duplicate))

    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_a_refusal_by_the_service_is_a_form_error_and_writes_nothing(demo, nothing_written):
    """The admin offers the form to security only; should it reach the service for someone else (a
    grant ended while the page was open), the service's refusal is the form's error."""
    policy = production_policy(demo)
    form_as_mgr = type("Form", (ApprovalPolicyForm,), {"actor": demo.mgr})
    form = form_as_mgr(data=posted(policy, min_approvals=0), instance=policy)

    with nothing_written():
        assert not form.is_valid()

    assert form.non_field_errors() == [
        "missing_duty: Changing policies and freeze windows needs security_approve."
    ]


def test_nobody_deletes_a_policy(demo, signed_in, nothing_written):
    policy = production_policy(demo)

    with nothing_written():
        response = signed_in(demo.admin).post(admin_url(ApprovalPolicy, "delete", policy.pk), {"post": "yes"})

    assert response.status_code == 403
