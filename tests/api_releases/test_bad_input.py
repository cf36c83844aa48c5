"""Bad input is a 400 naming the field, never a 500 and never a partial write (API.md)."""
import pytest

from releases import services
from tests.api_releases.shortcuts import (
    CHANGES,
    DEPLOYMENTS,
    approved,
    change_url,
    deployed,
    deployment_url,
    draft,
    pending,
)

VALID = {"title": "Rotate TLS certificates", "team": "payments", "environment": "staging", "artifact": "edge:1.4.2"}


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"title": None}, "title", "may not be null"),
        ({"title": "   "}, "title", "may not be blank"),
        ({"title": "x" * 201}, "title", "no more than 200"),
        ({"title": ["a", "list"]}, "title", "Not a valid string"),
        ({"title": "Null\x00byte"}, "title", "Null characters are not allowed"),
        ({"artifact": ""}, "artifact", "may not be blank"),
        ({"environment": "qa"}, "environment", "No environment has the slug qa."),
        ({"environment": "stag\x00ing"}, "environment", "Give the name as a string."),
        ({"environment": 3}, "environment", "Give the name as a string."),
        ({"team": "billing"}, "team", "No team has the slug billing."),
        ({"change_type": "urgent"}, "change_type", "is not a valid choice"),
        ({"risk": "extreme"}, "risk", "is not a valid choice"),
        ({"contributors": "dev2"}, "contributors", "Expected a list"),
        ({"contributors": ["dev2", "ghost"]}, "contributors", "Not an active member of team payments: ghost."),
        ({"contributors": ["dev2", "de\x00v"]}, "contributors", "Item 1: Null characters are not allowed"),
        ({"contributors": [None]}, "contributors", "Item 0: This field may not be null."),
        ({"ticket_url": "not a url"}, "ticket_url", "valid URL"),
        ({"contributor": ["rev"]}, "contributor", "Unknown field."),
    ],
)
def test_a_bad_create_body_names_the_field(demo, api_as, nothing_written, body, field, message):
    client = api_as(demo.dev)
    with nothing_written():
        response = client.post(CHANGES, {**VALID, **body}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert all(isinstance(text, str) for text in response.json()[field])
    assert message in response.json()[field][0]


def test_a_missing_title_is_required(demo, api_as, nothing_written):
    body = {key: value for key, value in VALID.items() if key != "title"}
    client = api_as(demo.dev)
    with nothing_written():
        response = client.post(CHANGES, body, format="json")
    assert response.status_code == 400
    assert response.json() == {"title": ["This field is required."]}


@pytest.mark.parametrize("payload", ['{"title": "half', "[1, 2]", "null", '"a string"'])
def test_a_body_that_is_not_a_json_object_is_refused(demo, api_as, nothing_written, payload):
    client = api_as(demo.dev)
    with nothing_written():
        response = client.post(CHANGES, payload, content_type="application/json")
    assert response.status_code == 400


def test_a_bad_outcome_is_refused(demo, api_as, nothing_written):
    change = approved(demo, demo.dev, demo.staging)
    deployment = services.deployment_start(actor=demo.ops, change_request=change)
    client = api_as(demo.ops)
    with nothing_written():
        response = client.post(deployment_url(deployment, "finish"), {"outcome": "partly"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["outcome"]


@pytest.mark.parametrize(
    "verb, body, field",
    [
        ("cancel", {}, "reason"),
        ("cancel", {"reason": "  "}, "reason"),
        ("approve", {"revision": 1, "comment": None}, "comment"),
        ("approve", {"revision": 1, "comment": "ok", "via": "portal"}, "via"),
        ("approve", {"comment": "ok"}, "revision"),
        ("approve", {"revision": "latest"}, "revision"),
        ("approve", {"revision": 0}, "revision"),
        ("reject", {"comment": "No."}, "revision"),
        ("deployments", {"pipeline_url": "ci run 7"}, "pipeline_url"),
    ],
)
def test_a_bad_action_body_names_the_field(demo, api_as, nothing_written, verb, body, field):
    change = pending(demo, demo.dev, demo.staging)
    user = {"cancel": demo.dev, "approve": demo.rev, "reject": demo.rev, "deployments": demo.ops}[verb]
    client = api_as(user)
    with nothing_written():
        response = client.post(change_url(change, verb), body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_a_rollback_needs_a_reason(demo, api_as, nothing_written):
    deployment = deployed(demo, approved(demo, demo.dev, demo.staging))
    client = api_as(demo.ops)
    with nothing_written():
        response = client.post(deployment_url(deployment, "rollback"), {}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["reason"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "non_field_errors"),
        ({"state": "approved"}, "state"),
        ({"revision": 7}, "revision"),
        ({"title": ""}, "title"),
        ({"contributors": ["ghost"]}, "contributors"),
    ],
)
def test_a_bad_edit_names_the_field(demo, api_as, nothing_written, body, field):
    change = draft(demo, demo.dev, demo.staging)
    client = api_as(demo.dev)
    with nothing_written():
        response = client.patch(change_url(change), body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_a_change_request_is_not_replaced_or_deleted(demo, api_as, nothing_written):
    change = draft(demo, demo.dev, demo.staging)
    client = api_as(demo.dev)
    with nothing_written():
        assert client.put(change_url(change), VALID, format="json").status_code == 405
        assert client.delete(change_url(change)).status_code == 405
        assert client.get(change_url(change, "approve")).status_code == 405


@pytest.mark.parametrize(
    "url",
    [
        f"{CHANGES}?state=shipped",
        f"{CHANGES}?awaiting_me=perhaps",
        f"{CHANGES}?author=de%00v",
        f"{DEPLOYMENTS}?state=done",
        f"{DEPLOYMENTS}?change_request=seven",
    ],
)
def test_a_bad_filter_is_refused(demo, api_as, url):
    response = api_as(demo.dev).get(url)
    assert response.status_code == 400


@pytest.mark.parametrize("pk", ["abc", "0", "-1", "99999999999999999999999", "1e3", "١"])
def test_an_id_that_cannot_exist_is_a_miss(demo, api_as, nothing_written, pk):
    client = api_as(demo.dev)
    with nothing_written():
        for url in (f"{CHANGES}{pk}/", f"{CHANGES}{pk}/gate/?action=deploy", f"{DEPLOYMENTS}{pk}/"):
            response = client.get(url)
            assert response.status_code == 404, url
        response = client.post(f"{CHANGES}{pk}/approve/", {}, format="json")
        assert response.status_code == 404


@pytest.mark.parametrize("value", ["99999999999999999999999", "0", "-9e266", "1.5"])
def test_a_change_request_filter_no_id_can_match_is_bad_input(demo, api_as, value):
    """Ids are whole numbers a bigint holds: anything else is a 400 naming the filter (it used to
    reach the database, where -9e266 overflowed into a 500)."""
    response = api_as(demo.auditor).get(f"{DEPLOYMENTS}?change_request={value}")
    assert response.status_code == 400
    assert list(response.json()) == ["change_request"]
