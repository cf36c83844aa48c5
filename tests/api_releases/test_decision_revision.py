"""API.md "Additions", issue 14 class 1: ``approve/`` and ``reject/`` take a required ``revision``,
the one the caller reviewed; a change that has moved past it answers 409 ``revision_changed``."""
import pytest

from releases import services
from tests.api_releases.shortcuts import change_url, codes, new_artifact, pending


@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_a_decision_must_name_the_revision(demo, api_as, nothing_written, verb):
    change = pending(demo, demo.dev, demo.staging)
    rev = api_as(demo.rev)

    with nothing_written():
        response = rev.post(change_url(change, verb), {"comment": "Fine."}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["revision"]


@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_a_decision_on_an_old_revision_is_a_conflict(demo, api_as, nothing_written, verb):
    change = pending(demo, demo.dev, demo.staging)
    services.change_request_update(actor=demo.dev, change_request=change, changes={"artifact": new_artifact()})
    rev = api_as(demo.rev)

    with nothing_written():
        response = rev.post(change_url(change, verb), {"revision": 1, "comment": "Fine."}, format="json")

    assert response.status_code == 409
    assert codes(response) == ["revision_changed"]
    assert "revision 2" in response.json()["reasons"][0]["message"]


def test_the_current_revision_is_approved(demo, api_as):
    change = pending(demo, demo.dev, demo.staging)
    change = services.change_request_update(actor=demo.dev, change_request=change,
                                            changes={"artifact": new_artifact()})

    response = api_as(demo.rev).post(change_url(change, "approve"), {"revision": 2, "comment": "Fine."},
                                     format="json")

    assert response.status_code == 200
    [approval] = response.json()["approvals"]
    assert (approval["revision"], approval["stale"], response.json()["state"]) == (2, False, "approved")


def test_the_schema_requires_the_revision(demo, api_as):
    schema = api_as(demo.rev).get("/api/schema/", {"format": "json"}).json()
    decision = schema["components"]["schemas"]["DecisionRequest"]
    assert "revision" in decision["required"]
    assert decision["properties"]["revision"]["type"] == "integer"
    approve = schema["paths"]["/api/v1/change-requests/{id}/approve/"]["post"]
    assert "revision_changed" in approve["responses"]["409"]["description"]
