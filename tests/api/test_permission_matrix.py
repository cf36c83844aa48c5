"""Every governance endpoint as every persona (and as nobody): the status each one gets."""
import pytest
from rest_framework.test import APIClient

from tests.api.shortcuts import ASSIGNMENTS, assignment_url, grant_of

PERSONAS = ["dev", "dev2", "rev", "rev2", "sec", "ops", "mgr", "auditor", "idev", "admin"]
SEES_ALL = {"sec", "auditor", "admin"}


def payments_grant(demo):
    return grant_of(demo.dev, "developer", demo.staging)


def identity_grant(demo):
    return grant_of(demo.idev, "developer", demo.staging)


READS = {
    "teams": lambda demo: "/api/v1/teams/",
    "team": lambda demo: "/api/v1/teams/payments/",
    "environments": lambda demo: "/api/v1/environments/",
    "environment": lambda demo: "/api/v1/environments/production/",
    "roles": lambda demo: "/api/v1/roles/",
    "role": lambda demo: "/api/v1/roles/security/",
    "assignments": lambda demo: ASSIGNMENTS,
    "payments grant": lambda demo: assignment_url(payments_grant(demo)),
    "identity grant": lambda demo: assignment_url(identity_grant(demo)),
}


def expected_read(persona: str, endpoint: str) -> int:
    if endpoint == "payments grant":
        return 200 if persona in SEES_ALL | {"dev", "mgr"} else 404
    if endpoint == "identity grant":
        return 200 if persona in SEES_ALL | {"idev"} else 404
    return 200


@pytest.mark.parametrize("persona", PERSONAS)
def test_reads(demo, api_as, persona):
    client = api_as(getattr(demo, persona))
    got = {endpoint: client.get(url(demo)).status_code for endpoint, url in READS.items()}
    assert got == {endpoint: expected_read(persona, endpoint) for endpoint in READS}


# Revoking dev's staging grant: the grantee and the team's manager and security may; the auditor sees
# it but may not; everyone else does not see it.
REVOKE = {"dev": 200, "mgr": 200, "sec": 200, "admin": 200, "auditor": 403,
          "dev2": 404, "rev": 404, "rev2": 404, "ops": 404, "idev": 404}
# Granting dev2 a staging reviewer role in payments: the manager and superusers may.
GRANT = {persona: 201 if persona in {"mgr", "admin"} else 403 for persona in PERSONAS}


@pytest.mark.parametrize("persona", PERSONAS)
def test_writes(demo, api_as, persona):
    client = api_as(getattr(demo, persona))
    revoke = client.post(assignment_url(payments_grant(demo), "revoke"), {"reason": "Matrix."}, format="json")
    grant = client.post(ASSIGNMENTS, {"user": "dev2", "role": "reviewer", "team": "payments",
                                      "environment": "staging", "justification": "Matrix."}, format="json")
    assert (revoke.status_code, grant.status_code) == (REVOKE[persona], GRANT[persona])


@pytest.mark.parametrize(
    "method, url",
    [("get", url) for url in ["/api/v1/teams/", "/api/v1/teams/payments/", "/api/v1/environments/",
                              "/api/v1/roles/", ASSIGNMENTS, f"{ASSIGNMENTS}1/"]]
    + [("post", ASSIGNMENTS)] + [("post", f"{ASSIGNMENTS}1/{verb}/") for verb in ["approve", "reject", "revoke"]],
)
def test_nobody_gets_401(demo, nothing_written, method, url):
    with nothing_written():
        response = getattr(APIClient(), method)(url, {}, format="json")
    assert response.status_code == 401
    assert set(response.json()) == {"detail"}
