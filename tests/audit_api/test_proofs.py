"""``audit-events/{sequence}/proof/`` and ``audit/consistency/``: Merkle proofs over the trail, checked
offline by compliance/continuity.py with the public key alone."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import audit
from audit import merkle, signing
from audit.models import AuditEvent
from audit.seals import seal
from compliance import continuity
from tests.audit.sealtools import signing_key  # noqa: F401 (fixture)

EVENTS = "/api/v1/audit-events/"
CONSISTENCY = "/api/v1/audit/consistency/"


@pytest.fixture
def sealed_twice(demo, signing_key):  # noqa: F811
    for n in range(3):
        audit.record("test.step", data={"n": n})
    first = seal()
    for n in range(3, 9):
        audit.record("test.step", data={"n": n})
    second = seal()
    audit.record("test.step", data={"n": 9})
    return first, second


def leaves(size):
    return [merkle.event_leaf(h) for h in
            AuditEvent.objects.filter(sequence__lte=size).order_by("sequence").values_list("hash", flat=True)]


def test_an_inclusion_proof_verifies_offline_against_the_signed_checkpoint(demo, api_as, sealed_twice):
    first, second = sealed_twice
    client = api_as(demo.auditor)
    for sequence in (1, 2, first.sequence, second.sequence):
        answer = client.get(f"{EVENTS}{sequence}/proof/?tree_size={second.tree_size}").json()
        assert answer["root_hash"] == merkle.naive_root(leaves(second.tree_size)).hex()
        assert answer["checkpoint"] == second.checkpoint
        continuity.check_inclusion(answer, signing.public_key())
    answer = client.get(f"{EVENTS}2/proof/").json()  # default: the whole log, not (yet) sealed
    assert answer["tree_size"] == AuditEvent.objects.count() and answer["checkpoint"] == ""
    continuity.check_inclusion(answer)
    with pytest.raises(continuity.ContinuityError, match="no signed checkpoint"):
        continuity.check_inclusion(answer, signing.public_key())
    forged = {**client.get(f"{EVENTS}2/proof/?tree_size={first.tree_size}").json(), "hash": "ab" * 32}
    with pytest.raises(continuity.ContinuityError, match="event #2: the proof of leaf 1 does not lead to the root"):
        continuity.check_inclusion(forged, signing.public_key())


def test_a_consistency_proof_verifies_offline_between_two_checkpoints(demo, api_as, sealed_twice):
    first, second = sealed_twice
    answer = api_as(demo.auditor).get(f"{CONSISTENCY}?from={first.tree_size}&to={second.tree_size}").json()
    assert (answer["from_checkpoint"], answer["to_checkpoint"]) == (first.checkpoint, second.checkpoint)
    continuity.check_consistency_answer(answer, signing.public_key())
    answer["proof"][0] = "00" * 32
    with pytest.raises(continuity.ContinuityError, match=f"does not extend the tree of {first.tree_size}"):
        continuity.check_consistency_answer(answer, signing.public_key())


@pytest.mark.parametrize("query, errors", [
    ("tree_size=2", {"tree_size": ["Must be at least the event's sequence (3)."]}),
    ("tree_size=999", {"tree_size": ["Beyond the log's current tree size ({head})."]}),
    ("tree_size=x", {"tree_size": ["A valid integer is required."]}),
    ("tree_size=0", {"tree_size": ["Ensure this value is greater than or equal to 1."]}),
])
def test_bad_inclusion_queries_are_400_with_field_messages(demo, api_as, sealed_twice, query, errors):
    client = api_as(demo.auditor)
    client.get(f"{EVENTS}1/proof/")  # the token's first use is recorded
    head = AuditEvent.objects.count()
    response = client.get(f"{EVENTS}3/proof/?{query}")
    assert response.status_code == 400
    assert response.json() == {k: [m.format(head=head) for m in v] for k, v in errors.items()}


@pytest.mark.parametrize("query, field", [
    ("from=5&to=4", "to"), ("from=1&to=999", "to"), ("from=a&to=3", "from"), ("to=3", "from"), ("from=0&to=3", "from"),
])
def test_bad_consistency_queries_are_400_with_field_messages(demo, api_as, sealed_twice, query, field):
    response = api_as(demo.auditor).get(f"{CONSISTENCY}?{query}")
    assert response.status_code == 400 and list(response.json()) == [field]


def test_an_unknown_event_is_404(demo, api_as, sealed_twice):
    client = api_as(demo.auditor)
    for sequence in (0, 999, 99999999999999999999 // 10):
        assert client.get(f"{EVENTS}{sequence}/proof/").status_code == 404


@pytest.mark.parametrize("persona", ["dev", "rev", "ops", "mgr", "idev"])
def test_proofs_need_view_audit(demo, api_as, persona):
    audit.record("test.step")
    client = api_as(getattr(demo, persona))
    for url in (f"{EVENTS}1/proof/", f"{CONSISTENCY}?from=1&to=1"):
        refused = client.get(url)
        assert refused.status_code == 403 and [r["code"] for r in refused.json()["reasons"]] == ["missing_duty"]


def test_proofs_cost_the_same_queries_and_log_n_hashes_at_any_size(demo, api_as, signing_key):  # noqa: F811
    client = api_as(demo.auditor)
    client.get(f"{EVENTS}1/proof/")  # the token's first use writes its last-used time
    counts, lengths = [], []
    for target in (20, 300):
        while AuditEvent.objects.count() < target:
            audit.record("test.step")
        seal()
        size = AuditEvent.objects.count()
        with CaptureQueriesContext(connection) as captured:
            inclusion = client.get(f"{EVENTS}7/proof/?tree_size={size - 1}").json()
            consistency = client.get(f"{CONSISTENCY}?from=5&to={size - 1}").json()
        counts.append(len(captured))
        lengths.append((len(inclusion["proof"]), len(consistency["proof"])))
        assert max(lengths[-1]) <= 2 * (size - 1).bit_length()
    assert counts[0] == counts[1]
