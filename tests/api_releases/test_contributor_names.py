"""Issue 14 class 8 (contributors): the ``contributors`` field names active members of the change's
team. A username nobody has, a user of another team and a disabled account get the same answer, so
the field tells a caller nothing about which accounts exist."""
import pytest
from django.contrib.auth import get_user_model

from tests.api_releases.shortcuts import CHANGES, change_url, draft

REFUSED = ["ghost", "idev", "gone"]  # no such user, a member of identity only, a disabled payments member


@pytest.fixture
def gone(demo):
    """A payments member whose account was disabled."""
    from governance import services as governance

    user = get_user_model().objects.create_user(username="gone", password="x")
    governance.membership_set(actor=demo.admin, team=demo.payments, user=user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    return user


def create(client, contributors):
    return client.post(CHANGES, {"title": "Retry", "team": "payments", "environment": "staging",
                                 "artifact": "payments-api:9.9.9", "contributors": contributors}, format="json")


def test_unknown_and_unnameable_users_get_one_answer_on_create(demo, api_as, gone, nothing_written):
    client = api_as(demo.dev)
    with nothing_written():
        answers = {name: create(client, ["dev2", name]) for name in REFUSED}

    assert {r.status_code for r in answers.values()} == {400}
    messages = {name: r.json()["contributors"] for name, r in answers.items()}
    assert messages == {name: [f"Not an active member of team payments: {name}."] for name in REFUSED}


def test_unknown_and_unnameable_users_get_one_answer_on_edit(demo, api_as, gone, nothing_written):
    change = draft(demo, demo.dev, demo.staging)
    client = api_as(demo.dev)
    with nothing_written():
        answers = {name: client.patch(change_url(change), {"contributors": [name]}, format="json")
                   for name in REFUSED}

    assert {name: (r.status_code, r.json()) for name, r in answers.items()} == {
        name: (400, {"contributors": [f"Not an active member of team payments: {name}."]}) for name in REFUSED
    }


def test_members_of_the_team_are_named(demo, api_as):
    response = create(api_as(demo.dev), ["dev2", "rev"])

    assert response.status_code == 201
    assert response.json()["contributors"] == ["dev2", "rev"]
