"""A refused request leaves no trace but its refusal: no grant, no history row, no audit event, no
permission."""
import pytest

from tests.api.shortcuts import ASSIGNMENTS, assignment_url, grant_of, in_days

PLAIN = {"user": "dev2", "role": "reviewer", "team": "payments", "environment": "staging", "justification": "Help."}


def create(body):
    return lambda demo: ("post", ASSIGNMENTS, body)


def on(verb, user, role, environment, body=None):
    return lambda demo: (
        "post", assignment_url(grant_of(getattr(demo, user), role, getattr(demo, environment)), verb), body or {},
    )


@pytest.mark.parametrize(
    "persona, request_for, status",
    [
        ("mgr", create(PLAIN | {"user": "mgr"}), 403),  # self_grant
        ("dev", create(PLAIN), 403),  # missing_duty
        ("mgr", create(PLAIN | {"user": "idev"}), 403),  # not_team_member
        ("mgr", create(PLAIN | {"user": "dev", "role": "operations", "environment": "production",
                                "expires_at": in_days(30)}), 403),  # sod_conflict
        ("mgr", create(PLAIN | {"justification": ""}), 400),
        ("mgr", create(PLAIN | {"environment": "production"}), 400),  # privileged without expiry
        ("mgr", create(PLAIN | {"user": "nobody"}), 400),
        ("mgr", create(PLAIN | {"user": "dev", "role": "developer"}), 400),  # already held
        ("sec", on("approve", "dev", "developer", "staging"), 409),
        ("sec", on("reject", "dev", "developer", "staging"), 409),
        ("auditor", on("revoke", "dev", "developer", "staging", {"reason": "x"}), 403),
        ("mgr", on("revoke", "dev", "developer", "staging", {"reason": ""}), 400),
        ("idev", on("revoke", "dev", "developer", "staging", {"reason": "x"}), 404),
    ],
)
def test_a_refused_request_writes_nothing(demo, api_as, nothing_written, persona, request_for, status):
    client = api_as(getattr(demo, persona))
    method, url, body = request_for(demo)
    with nothing_written():
        response = getattr(client, method)(url, body, format="json")
    assert response.status_code == status, response.json()


def test_a_grant_refused_after_its_checks_began_leaves_no_lock_behind(demo, api_as):
    """The same client can go on to a valid grant: the refused one's transaction ended cleanly."""
    client = api_as(demo.mgr)
    assert client.post(ASSIGNMENTS, PLAIN | {"user": "mgr"}, format="json").status_code == 403
    assert client.post(ASSIGNMENTS, PLAIN, format="json").status_code == 201
