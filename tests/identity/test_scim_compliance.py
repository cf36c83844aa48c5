"""scim2-tester's compliance checks against a live server (pytest-django's live_server): discovery,
CRUD, PATCH add/replace/remove and attribute selection for Users and Groups. docs/identity.md
lists which checks apply and which are excluded, with the reason."""
import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server

from identity.services.credentials import provisioning_credential_create

pytestmark = pytest.mark.django_db(transaction=True)



def test_scim2_tester_compliance(live_server):
    _, key = provisioning_credential_create(name="tester")
    http = Client(base_url=f"{live_server.url}/scim/v2", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    client = SyncSCIMClient(http)
    client.discover()

    results = check_server(client, raise_exceptions=False)

    failures = [f"{r.resource_type or ''} {r.title}: {r.reason}" for r in results
                if r.status.name in {"ERROR", "CRITICAL", "FAIL", "FAILURE"}]
    passed = [r for r in results if r.status.name in {"SUCCESS", "COMPLIANT", "ACCEPTABLE"}]
    assert passed, "the tester ran no check"
    counts = {}
    for r in results:
        counts[r.status.name] = counts.get(r.status.name, 0) + 1
    print("scim2-tester:", counts, sorted({f"{r.title}: {r.reason}" for r in results if r.status.name in {"SKIPPED", "DEVIATION"}}))
    assert failures == []
