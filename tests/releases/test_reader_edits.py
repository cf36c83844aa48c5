"""Issue 14 class 2: whatever a reviewer read when they approved — title, description, ticket,
artifact, contributors, the emergency's reason — cannot change under their approval. An edit of
any of it on a change under review is a new revision (approvals turn stale, back to pending), and
its audit event records each value before and after."""
import pytest

from releases import services
from releases.models import ChangeRequest
from tests.api_releases.shortcuts import change_url
from tests.releases.stories import (
    approved_in_staging,
    draft,
    events_for,
    new_artifact,
    pending,
    pending_in_production,
)

S = ChangeRequest.State

EDITS = {
    "title": "Retry card authorisation twice",
    "description": "Now retries twice.",
    "ticket_url": "https://tickets.example.com/PAY-666",
    "artifact": None,  # a fresh artifact
    "contributors": ["dev2"],
}


def edit_value(field):
    return new_artifact() if field == "artifact" else EDITS[field]


@pytest.mark.parametrize("field", sorted(EDITS))
def test_an_edit_after_approval_is_a_new_revision(demo, now, field):
    cr = approved_in_staging(demo, now, description="Retries once.", ticket_url="https://tickets.example.com/PAY-1")
    value = edit_value(field)

    cr = services.change_request_update(actor=demo.dev, change_request=cr, changes={field: value}, at=now)

    assert (cr.state, cr.revision, cr.approved_at) == (S.PENDING, 2, None)
    assert [(a.revision, a.stale) for a in cr.approvals.all()] == [(1, True)]
    [*_, event] = events_for(cr)
    assert event.action == "change_request.revised"
    assert event.data["changed"] == [field]
    assert event.data["changes"][field]["after"] == value


def test_an_edit_of_a_pending_change_dismisses_its_approvals_so_far(demo, now):
    """Production needs two sign-offs; rev's, given to the old title, no longer counts."""
    cr = pending_in_production(demo, now)
    services.change_request_approve(actor=demo.rev, change_request=cr, via="portal", at=now)

    cr = services.change_request_update(actor=demo.dev, change_request=cr, changes={"title": "Retry twice"}, at=now)

    assert (cr.state, cr.revision) == (S.PENDING, 2)
    assert [a.stale for a in cr.approvals.all()] == [True]


def test_the_emergency_reason_is_read_by_reviewers_too(demo, now):
    cr = pending(demo, now, environment=demo.staging, change_type="emergency")
    services.change_request_approve(actor=demo.sec, change_request=cr, at=now)

    cr = services.change_request_update(actor=demo.dev, change_request=cr,
                                        changes={"emergency_reason": "Not so urgent after all."}, at=now)

    assert (cr.state, cr.revision) == (S.PENDING, 2)


def test_the_audit_event_carries_every_value_before_and_after(demo, now):
    cr = approved_in_staging(demo, now, description="Retries once.")
    old_artifact, rebuilt = cr.artifact, new_artifact()

    services.change_request_update(
        actor=demo.dev, change_request=cr, at=now,
        changes={"title": "Retry twice", "description": "Retries once.", "artifact": rebuilt,
                 "contributors": ["dev2", "rev2"]},
    )

    [*_, event] = events_for(cr)
    assert event.data["changed"] == ["artifact", "contributors", "title"]  # the description did not change
    assert event.data["changes"] == {
        "title": {"before": "Retry card authorisation on timeout", "after": "Retry twice"},
        "artifact": {"before": old_artifact, "after": rebuilt},
        "contributors": {"before": [], "after": ["dev2", "rev2"]},
    }


def test_a_draft_is_edited_in_place_and_still_audited_with_its_values(demo, now):
    cr = draft(demo, now)

    cr = services.change_request_update(actor=demo.dev, change_request=cr, changes={"title": "Retry twice"}, at=now)

    assert (cr.state, cr.revision) == (S.DRAFT, 1)
    [*_, event] = events_for(cr)
    assert event.action == "change_request.updated"
    assert event.data["changes"] == {"title": {"before": "Retry card authorisation on timeout",
                                               "after": "Retry twice"}}


def test_the_api_edit_of_an_approved_title_is_a_new_revision(demo, now, api_as):
    cr = approved_in_staging(demo, now)

    response = api_as(demo.dev).patch(change_url(cr), {"title": "Retry twice"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["revision"], body["title"]) == ("pending", 2, "Retry twice")
    assert [a["stale"] for a in body["approvals"]] == [True]
