"""The ways back over the API (issue 18): ``request-changes/``, ``withdraw/``, ``re-review/`` and
``retry/`` on the change-requests viewset, with reason codes (403), 409 for a wrong state and 400 for
a bad body; the change form's fields are written and read like the others."""
from datetime import timedelta

from django.utils import timezone

from releases import services
from releases.models import Approval
from tests.api_releases.shortcuts import CHANGES, approved, change_url, codes, pending


def clients(demo, api_as):
    """One token per persona, made before any ``nothing_written`` block (a token is an audit event)."""
    made = {name: api_as(getattr(demo, name)) for name in ("dev", "dev2", "rev", "rev2", "ops")}
    return lambda user: made[user.username]


def test_request_changes_then_revise_and_resubmit(demo, api_as):
    change = pending(demo, demo.dev, demo.staging)
    response = api_as(demo.rev).post(change_url(change, "request-changes"),
                                     {"revision": 1, "comment": "Add a back-out plan."}, format="json")
    assert response.status_code == 200
    assert response.json()["state"] == "changes_requested"
    assert response.json()["approvals"][0]["decision"] == "changes_requested"

    author = api_as(demo.dev)
    revised = author.patch(change_url(change), {"backout_plan": "Redeploy 2.14."}, format="json")
    assert revised.status_code == 200
    assert (revised.json()["revision"], revised.json()["backout_plan"]) == (2, "Redeploy 2.14.")
    resubmitted = author.post(change_url(change, "submit"))
    assert (resubmitted.status_code, resubmitted.json()["state"]) == (200, "pending")


def test_request_changes_refusals(demo, api_as, nothing_written):
    api_as = clients(demo, api_as)
    change = pending(demo, demo.dev, demo.staging)
    with nothing_written():
        own = api_as(demo.dev).post(change_url(change, "request-changes"), {"revision": 1, "comment": "x"},
                                    format="json")
        no_comment = api_as(demo.rev).post(change_url(change, "request-changes"), {"revision": 1}, format="json")
        moved_on = api_as(demo.rev).post(change_url(change, "request-changes"), {"revision": 2, "comment": "x"},
                                         format="json")
    assert own.status_code == 403 and "author_cannot_approve" in codes(own)
    assert no_comment.status_code == 400 and "comment" in no_comment.json()
    assert moved_on.status_code == 409 and codes(moved_on) == ["revision_changed"]
    done = approved(demo, demo.dev, demo.staging)
    with nothing_written():
        late = api_as(demo.rev2).post(change_url(done, "request-changes"), {"revision": 1, "comment": "x"},
                                      format="json")
    assert late.status_code == 409 and codes(late) == ["invalid_state"]


def test_withdraw(demo, api_as, nothing_written):
    api_as = clients(demo, api_as)
    change = pending(demo, demo.dev, demo.staging)
    with nothing_written():
        other = api_as(demo.dev2).post(change_url(change, "withdraw"), {}, format="json")
    assert other.status_code == 403 and codes(other) == ["not_author"]

    response = api_as(demo.dev).post(change_url(change, "withdraw"), {"reason": "Not ready."}, format="json")
    assert (response.status_code, response.json()["state"], response.json()["revision"]) == (200, "draft", 2)
    with nothing_written():
        again = api_as(demo.dev).post(change_url(change, "withdraw"), {}, format="json")
    assert again.status_code == 409 and codes(again) == ["invalid_state"]


def test_re_review(demo, api_as, nothing_written):
    api_as = clients(demo, api_as)
    change = approved(demo, demo.dev, demo.staging)
    with nothing_written():
        early = api_as(demo.dev).post(change_url(change, "re-review"), {}, format="json")
    assert early.status_code == 409 and codes(early) == ["approvals_not_expired"]

    Approval.objects.filter(change_request=change).update(created_at=timezone.now() - timedelta(days=8))
    with nothing_written():
        reviewer = api_as(demo.rev).post(change_url(change, "re-review"), {}, format="json")
    assert reviewer.status_code == 403 and codes(reviewer) == ["not_author"]
    response = api_as(demo.dev).post(change_url(change, "re-review"), {"comment": "Still wanted."}, format="json")
    assert (response.status_code, response.json()["state"], response.json()["revision"]) == (200, "pending", 2)


def test_retry(demo, api_as, nothing_written):
    api_as = clients(demo, api_as)
    change = approved(demo, demo.dev, demo.staging)
    with nothing_written():
        not_failed = api_as(demo.ops).post(change_url(change, "retry"), {}, format="json")
    assert not_failed.status_code == 409 and codes(not_failed) == ["invalid_state"]
    first = services.deployment_start(actor=demo.ops, change_request=change)
    services.deployment_finish(actor=demo.ops, deployment=first, outcome="failed")

    with nothing_written():
        author = api_as(demo.dev).post(change_url(change, "retry"), {}, format="json")
        bad_link = api_as(demo.ops).post(change_url(change, "retry"), {"pipeline_url": "javascript:x"}, format="json")
    assert author.status_code == 403 and "author_cannot_deploy" in codes(author)
    assert bad_link.status_code == 400 and "pipeline_url" in bad_link.json()
    response = api_as(demo.ops).post(change_url(change, "retry"), {"pipeline_url": "https://ci.example.com/2"},
                                     format="json")
    assert response.status_code == 201 and response.json()["id"] != first.pk
    assert response.json()["state"] == "running"


def test_the_change_form_fields_are_written_and_read(demo, api_as):
    body = {"title": "Pool size", "team": "payments", "environment": "staging", "artifact": "payments-api:3",
            "implementation_plan": "1. Deploy.\n2. Watch.", "backout_plan": "Redeploy 2.", "risk_impact": "Low.",
            "planned_start": "2030-01-07T10:00:00Z", "planned_end": "2030-01-07T11:00:00Z",
            "affected_service": "payments-api", "source_url": "https://github.com/acme/payments/pull/7",
            "ticket_url": "https://tickets.example.com/PAY-7"}
    created = api_as(demo.dev).post(CHANGES, body, format="json")
    assert created.status_code == 201, created.content
    got = created.json()
    assert {k: got[k] for k in ("implementation_plan", "backout_plan", "risk_impact", "affected_service",
                                "source_url")} == {k: body[k] for k in ("implementation_plan", "backout_plan",
                                                                        "risk_impact", "affected_service",
                                                                        "source_url")}
    assert got["planned_start"].startswith("2030-01-07T10:00:00")
    backwards = api_as(demo.dev).post(CHANGES, {**body, "planned_end": "2030-01-07T09:00:00Z"}, format="json")
    assert backwards.status_code == 400 and "planned_end" in backwards.json()
    not_http = api_as(demo.dev).post(CHANGES, {**body, "source_url": "ftp://x.example.com/y"}, format="json")
    assert not_http.status_code == 400 and "source_url" in not_http.json()
