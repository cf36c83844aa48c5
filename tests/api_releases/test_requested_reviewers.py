"""``requested_reviewers`` on create and edit (issue 18): holders of approve or security approve for
the environment, neither the author nor a contributor; refused with a field message (400) and
nothing written; editing it starts no new revision."""
import pytest

from audit.models import AuditEvent
from releases.models import ChangeRequest
from tests.api_releases.shortcuts import CHANGES, change_url, draft, pending
from tests.releases.conftest import nothing_written  # noqa: F401 (fixture)

BODY = {"title": "Retry refunds", "team": "payments", "environment": "staging", "artifact": "refunds:2.0.1",
        "contributors": ["dev2"]}


def test_the_author_names_requested_reviewers(demo, api_as):
    response = api_as(demo.dev).post(CHANGES, {**BODY, "requested_reviewers": ["sec", "rev", "rev"]}, format="json")
    assert response.status_code == 201
    assert response.json()["requested_reviewers"] == ["rev", "sec"]
    change = ChangeRequest.objects.get(pk=response.json()["id"])
    event = AuditEvent.objects.get(action="change_request.created", target_id=str(change.pk))
    assert event.data["requested_reviewers"] == ["rev", "sec"]
    assert api_as(demo.rev).get(change_url(change)).json()["requested_reviewers"] == ["rev", "sec"]


@pytest.mark.parametrize(("named", "messages"), [
    (["dev"], ["You cannot ask yourself to review your own change."]),
    (["dev2", "rev"], ["A contributor cannot review this change: dev2."]),
    (["ops"], ["Not a reviewer for staging: ops."]),
    (["no-such-user", "rev"], ["Not a reviewer for staging: no-such-user."]),
    (["dev", "dev2", "ops"], ["You cannot ask yourself to review your own change.",
                              "A contributor cannot review this change: dev2.", "Not a reviewer for staging: ops."]),
])
def test_refusals_are_field_messages_and_write_nothing(demo, api_as, nothing_written, named, messages):
    client = api_as(demo.dev)
    with nothing_written():
        response = client.post(CHANGES, {**BODY, "requested_reviewers": named}, format="json")
    assert response.status_code == 400
    assert response.json() == {"requested_reviewers": messages}


def test_the_field_takes_a_list_of_usernames(demo, api_as, nothing_written):
    client = api_as(demo.dev)
    with nothing_written():
        response = client.post(CHANGES, {**BODY, "requested_reviewers": "rev"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["requested_reviewers"]


def test_editing_the_request_starts_no_new_revision(demo, api_as):
    change = pending(demo, demo.dev, demo.staging, requested_reviewers=["rev"])
    response = api_as(demo.dev).patch(change_url(change), {"requested_reviewers": ["rev2", "sec"]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["revision"], body["requested_reviewers"]) == ("pending", 1, ["rev2", "sec"])
    event = AuditEvent.objects.filter(action="change_request.updated", target_id=str(change.pk)).latest("pk")
    assert (event.data["changed"], event.data["requested_reviewers"]) == ([], ["rev2", "sec"])


def test_an_edit_refuses_a_contributor_of_an_earlier_revision(demo, api_as, nothing_written):
    change = pending(demo, demo.dev, demo.staging, contributors=["dev2"])
    client = api_as(demo.dev)
    assert client.patch(change_url(change), {"contributors": []}, format="json").status_code == 200
    with nothing_written():
        response = client.patch(change_url(change), {"requested_reviewers": ["dev2"]}, format="json")
    assert response.status_code == 400
    assert response.json() == {"requested_reviewers": ["A contributor cannot review this change: dev2."]}


def test_only_the_author_asks(demo, api_as):
    change = draft(demo, demo.dev, demo.staging)
    response = api_as(demo.dev2).patch(change_url(change), {"requested_reviewers": ["rev"]}, format="json")
    assert response.status_code in (403, 404)
    assert not ChangeRequest.objects.get(pk=change.pk).requested_reviewers.exists()
