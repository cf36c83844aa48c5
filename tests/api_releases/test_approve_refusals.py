"""C2, C11 over the API: who may not approve, with every reason; a refusal writes nothing."""
from tests.api_releases.shortcuts import approved, change_url, codes, grant, pending
from tests.factories import set_control


def approve(client, change, comment="LGTM"):
    return client.post(change_url(change, "approve"), {"revision": change.revision, "comment": comment}, format="json")


def test_the_author_may_not_approve_their_own_change(demo, api_as, nothing_written):
    grant(demo, demo.dev, "reviewer", demo.staging)
    change = pending(demo, demo.dev, demo.staging)
    client = api_as(demo.dev)
    with nothing_written():
        response = approve(client, change)
    assert response.status_code == 403
    assert codes(response) == ["author_cannot_approve"]
    assert response.json()["detail"]


def test_a_contributor_may_not_approve(demo, api_as, nothing_written):
    change = pending(demo, demo.dev, demo.staging, contributors=["rev"])
    client = api_as(demo.rev)
    with nothing_written():
        response = approve(client, change)
    assert response.status_code == 403
    assert codes(response) == ["contributor_cannot_approve"]


def test_one_person_counts_once_per_revision(demo, api_as, nothing_written):
    set_control(demo.staging.approval_policy, by=demo.admin, second=demo.sec, min_approvals=2)
    change = pending(demo, demo.dev, demo.staging)
    client = api_as(demo.rev)
    assert approve(client, change).json()["state"] == "pending"
    with nothing_written():
        response = approve(client, change, "Still fine.")
    assert response.status_code == 403
    assert codes(response) == ["already_approved"]


def test_approving_needs_the_approve_duty(demo, api_as, nothing_written):
    change = pending(demo, demo.dev, demo.staging)
    client = api_as(demo.ops)
    with nothing_written():
        response = approve(client, change)
    assert response.status_code == 403
    assert codes(response) == ["missing_duty"]


def test_a_superuser_gets_no_bypass(demo, api_as, nothing_written):
    change = pending(demo, demo.dev, demo.staging)
    client = api_as(demo.admin)
    with nothing_written():
        response = approve(client, change)
    assert response.status_code == 403
    assert codes(response) == ["missing_duty"]


def test_production_takes_sign_offs_only_from_the_portal(demo, api_as, nothing_written):
    change = pending(demo, demo.dev, demo.production)
    client = api_as(demo.rev)
    with nothing_written():
        response = approve(client, change)
    assert response.status_code == 403
    assert codes(response) == ["interactive_signoff_required"]


def test_every_reason_that_applies_is_given(demo, api_as, nothing_written):
    change = pending(demo, demo.dev, demo.production, contributors=["dev2"])
    client = api_as(demo.dev2)
    with nothing_written():
        response = approve(client, change)
    assert response.status_code == 403
    assert sorted(codes(response)) == ["contributor_cannot_approve", "interactive_signoff_required", "missing_duty"]


def test_only_a_pending_change_can_be_decided(demo, api_as, nothing_written):
    change = approved(demo, demo.dev, demo.staging)
    client = api_as(demo.rev2)
    with nothing_written():
        response = approve(client, change)
    assert response.status_code == 409
    assert codes(response) == ["invalid_state"]
    assert "approved" in response.json()["reasons"][0]["message"]


def test_a_rejection_is_refused_for_the_same_reasons(demo, api_as, nothing_written):
    change = pending(demo, demo.dev, demo.staging, contributors=["rev"])
    client = api_as(demo.rev)
    with nothing_written():
        response = client.post(change_url(change, "reject"), {"revision": 1, "comment": "No."}, format="json")
    assert response.status_code == 403
    assert codes(response) == ["contributor_cannot_approve"]
