"""A decision answers with ``reads.answer`` (one statement: approvals with their reviewers, current
contributors, requested reviewers, author and PIR reviewer) instead of the change read again
through ``selectors.with_details``. The API's answer must be what the re-read would have rendered,
whatever the change holds: several approvals, stale ones from an earlier revision, an automatic
approval (no reviewer), contributors, requested reviewers, a rejection, a request for changes, a
finished post-implementation review."""
import json
from datetime import timedelta

import pytest
from rest_framework.renderers import JSONRenderer

from releases import reads, selectors, services
from releases.api.serializers import ChangeRequestSerializer
from releases.models import Approval, ApprovalPolicy, ChangeRequest
from tests.api_releases.shortcuts import change_url, new_artifact, pending
from tests.factories import UserFactory, bootstrap_grant, set_control
from tests.releases.stories import deploy, pending_in_production

pytestmark = pytest.mark.django_db
S = ChangeRequest.State


def rendered(change_request: ChangeRequest) -> dict:
    """``change_request`` as the API renders it: serialized, through DRF's JSON renderer, parsed."""
    return json.loads(JSONRenderer().render(ChangeRequestSerializer(change_request).data))


def reread(pk: int) -> dict:
    """What the answer was before issue 21: the change read again with every detail."""
    return rendered(selectors.with_details(ChangeRequest.objects.filter(pk=pk)).get())


def staging_needs(demo, count: int) -> None:
    set_control(ApprovalPolicy.objects.get(environment=demo.staging), by=demo.admin, second=demo.sec,
                min_approvals=count)


def decide(api_as, user, change, verb: str, **body):
    change.refresh_from_db()
    response = api_as(user).post(change_url(change, verb), {"revision": change.revision, **body}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def test_an_approval_with_contributors_and_requested_reviewers_answers_as_the_reread(demo, api_as):
    change = pending(demo, demo.dev, demo.staging, contributors=["dev2"], requested_reviewers=["sec", "rev2"])

    body = decide(api_as, demo.rev, change, "approve", comment="Retry is idempotent.")

    assert body == reread(change.pk)
    assert (body["state"], body["contributors"], sorted(body["requested_reviewers"])) == ("approved", ["dev2"],
                                                                                         ["rev2", "sec"])
    assert [a["reviewer"] for a in body["approvals"]] == ["rev"]


def test_several_approvals_answer_in_order_with_their_reviewers(demo, api_as):
    staging_needs(demo, 3)
    change = pending(demo, demo.dev, demo.staging, contributors=["dev2"])
    for reviewer in (demo.rev2, demo.sec):
        services.change_request_approve(actor=reviewer, change_request=change, via="portal",
                                        comment=f"{reviewer.username} agrees")
    assert ChangeRequest.objects.get(pk=change.pk).state == S.PENDING

    body = decide(api_as, demo.rev, change, "approve", comment="Third sign-off.")

    assert body == reread(change.pk)
    assert body["state"] == "approved"
    assert [(a["reviewer"], a["via"], a["is_security"]) for a in body["approvals"]] == [
        ("rev2", "portal", False), ("sec", "portal", True), ("rev", "api", False)]


def test_a_pending_approval_answers_as_the_reread(demo, api_as):
    """An approval that does not settle the change yet (state stays pending, no approved_at)."""
    staging_needs(demo, 2)
    change = pending(demo, demo.dev, demo.staging, requested_reviewers=["rev"])

    body = decide(api_as, demo.rev, change, "approve")

    assert body == reread(change.pk)
    assert (body["state"], body["approved_at"], len(body["approvals"])) == ("pending", None, 1)


def test_stale_approvals_of_an_earlier_revision_are_in_the_answer(demo, api_as):
    staging_needs(demo, 2)
    change = pending(demo, demo.dev, demo.staging, contributors=["dev2"])
    services.change_request_approve(actor=demo.rev, change_request=change, via="portal")
    services.change_request_approve(actor=demo.sec, change_request=change, via="portal")
    # The author edits what a reviewer read: revision 2, both decisions stale, dev2 no longer listed.
    services.change_request_update(actor=demo.dev, change_request=change,
                                   changes={"artifact": new_artifact(), "contributors": []})

    body = decide(api_as, demo.rev, change, "approve", comment="Re-read revision 2.")

    assert body == reread(change.pk)
    assert body["revision"] == 2 and body["contributors"] == [] and body["state"] == "pending"
    assert [(a["reviewer"], a["revision"], a["stale"]) for a in body["approvals"]] == [
        ("rev", 1, True), ("sec", 1, True), ("rev", 2, False)]


def test_a_rejection_answers_as_the_reread(demo, api_as):
    change = pending(demo, demo.dev, demo.staging, contributors=["dev2"], requested_reviewers=["rev2"])

    body = decide(api_as, demo.rev2, change, "reject", comment="Needs a rollback plan.")

    assert body == reread(change.pk)
    assert (body["state"], body["close_reason"]) == ("rejected", "Needs a rollback plan.")
    assert body["closed_at"] is not None


def test_a_request_for_changes_answers_as_the_reread(demo, api_as):
    staging_needs(demo, 2)
    change = pending(demo, demo.dev, demo.staging, contributors=["dev2"], requested_reviewers=["rev", "sec"])
    services.change_request_approve(actor=demo.sec, change_request=change, via="portal")

    body = decide(api_as, demo.rev, change, "request-changes", comment="Add a backout plan.")

    assert body == reread(change.pk)
    assert body["state"] == "changes_requested"
    assert [(a["reviewer"], a["decision"]) for a in body["approvals"]] == [
        ("sec", "approved"), ("rev", "changes_requested")]


def test_an_approval_after_the_policys_own_approval_answers_as_the_reread(demo, api_as):
    """A standard change auto-approved (no reviewer) under a policy that asks two approvals: the
    answer names the automatic approval with a null reviewer, as the re-read does."""
    staging_needs(demo, 2)
    change = pending(demo, demo.dev, demo.staging, change_type="standard", risk="low")
    assert ChangeRequest.objects.get(pk=change.pk).state == S.PENDING
    assert list(Approval.objects.filter(change_request=change).values_list("via", "reviewer_id")) == [("auto", None)]

    body = decide(api_as, demo.rev, change, "approve")

    assert body == reread(change.pk)
    assert body["state"] == "approved"
    assert [(a["reviewer"], a["via"]) for a in body["approvals"]] == [(None, "auto"), ("rev", "api")]


def test_lists_named_in_two_edits_answer_in_the_order_the_change_page_shows(demo, api_as):
    """Contributors and requested reviewers added one edit after another: the through rows are in
    the order of the edits, the users' ids the other way round. The approve answer must list them as
    GET (``with_details``) does, or a client sees the same change in two orders."""
    from tests.factories import member

    late = UserFactory(username="late-contributor")
    member(late, demo.payments)
    asked = UserFactory(username="asked-reviewer")
    bootstrap_grant(asked, "reviewer", demo.payments, demo.staging)
    staging_needs(demo, 2)
    change = pending(demo, demo.dev, demo.staging, contributors=["late-contributor"], requested_reviewers=["asked-reviewer"])
    services.change_request_update(actor=demo.dev, change_request=change, changes={
        "contributors": ["late-contributor", "dev2"], "requested_reviewers": ["asked-reviewer", "sec"]})
    client = api_as(demo.rev)
    shown = client.get(change_url(change)).json()
    assert shown == reread(change.pk)

    body = decide(api_as, demo.rev, change, "approve")

    assert (sorted(body["contributors"]), sorted(body["requested_reviewers"])) == (
        ["dev2", "late-contributor"], ["asked-reviewer", "sec"])
    after = client.get(change_url(change)).json()
    assert (body["contributors"], body["requested_reviewers"]) == (after["contributors"], after["requested_reviewers"])
    assert body == reread(change.pk) == after


# --- reads.answer on its own ---------------------------------------------------------------------


def answered(pk: int) -> dict:
    """``reads.answer`` on the change as the decision services hold it (their locked read)."""
    return rendered(reads.answer(reads.change(pk, with_team=True)))


def test_the_answer_of_every_demo_change_is_the_reread(demo, django_assert_num_queries):
    """The demo holds drafts, rejections, auto-approvals, two-reviewer production sign-offs and
    deployed changes with contributors."""
    pks = list(ChangeRequest.objects.order_by("pk").values_list("pk", flat=True))
    assert len(pks) >= 8
    for pk in pks:
        cr = reads.change(pk, with_team=True)
        with django_assert_num_queries(1):
            answer = reads.answer(cr)
        with django_assert_num_queries(0):  # everything the representation reads is loaded
            data = rendered(answer)
        assert data == reread(pk), pk
    approvals = [len(reread(pk)["approvals"]) for pk in pks]
    assert max(approvals) >= 2 and 0 in approvals


def test_the_answer_names_the_pir_reviewer(demo, now):
    cr = pending_in_production(demo, now, change_type="emergency", risk="high", contributors=["dev2"])
    cr = services.change_request_approve(actor=demo.sec, change_request=cr, via="portal", at=now)
    assert cr.state == S.APPROVED
    deploy(demo, cr, now + timedelta(minutes=5))
    services.change_request_review_pir(actor=demo.rev, change_request=cr, notes="Root cause fixed.",
                                       at=now + timedelta(hours=2))

    data = answered(cr.pk)

    assert data == reread(cr.pk)
    assert (data["pir_by"], data["author"], data["contributors"]) == ("rev", "dev", ["dev2"])
    plain = rendered(reads.answer(ChangeRequest.objects.get(pk=cr.pk)))
    assert plain == data


def test_the_answer_holds_many_approvals(demo, now):
    reviewers = []
    for n in range(7):
        user = UserFactory(username=f"reviewer{n}")
        bootstrap_grant(user, "reviewer", demo.payments, demo.staging)
        reviewers.append(user)
    staging_needs(demo, 9)
    cr = pending(demo, demo.dev, demo.staging, contributors=["dev2"], requested_reviewers=["reviewer2"])
    # Approvals out of creation order: the answer lists them as Approval orders them (created_at, id).
    for n, reviewer in enumerate(reversed(reviewers)):
        services.change_request_approve(actor=reviewer, change_request=cr, via="portal",
                                        at=now + timedelta(minutes=30 - n), comment=f"#{n}")
    services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now + timedelta(minutes=30))

    data = answered(cr.pk)

    assert data == reread(cr.pk)
    assert len(data["approvals"]) == 8
    assert [a["created_at"] for a in data["approvals"]] == sorted(a["created_at"] for a in data["approvals"])
    assert data["requested_reviewers"] == ["reviewer2"]
