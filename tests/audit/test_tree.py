"""The Merkle tree grows with the chain (audit.tree): every append writes the perfect subtrees it
completes under the head's lock, so proofs for any size are one read and match the naive tree."""
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import audit
from audit import merkle, tree
from audit.models import AuditEvent, ChainHead, MerkleNode

pytestmark = pytest.mark.django_db


def leaves() -> list[bytes]:
    return [merkle.event_leaf(h) for h in AuditEvent.objects.order_by("sequence").values_list("hash", flat=True)]


def stored() -> dict[int, str]:
    return dict(MerkleNode.objects.values_list("position", "hash"))


def test_the_head_carries_the_tree_of_every_event():
    for n in range(1, 14):
        audit.record("test.step", data={"n": n})
        head = ChainHead.objects.get(pk=1)
        assert head.tree_size == head.sequence == n
        compact = merkle.CompactRange(head.tree_size, [bytes.fromhex(h) for h in head.compact_range])
        assert compact.root() == merkle.naive_root(leaves()) == tree.root(n)
    assert MerkleNode.objects.count() == 2 * 13 - bin(13).count("1")  # fewer than two rows per event


def test_events_chained_together_grow_the_tree_as_one_by_one():
    audit.record("test.first")
    with audit.deferred():
        for n in range(6):
            audit.record("test.batch", data={"n": n})
    head = ChainHead.objects.get(pk=1)
    assert head.tree_size == 7
    before = stored()
    assert tree.rebuild() == 7
    assert stored() == before
    assert tree.root(7) == merkle.naive_root(leaves())


def test_proofs_from_the_stored_nodes_verify_at_every_size():
    for n in range(1, 12):
        audit.record("test.step", data={"n": n})
    hashes = leaves()
    for size in range(1, 12):
        root = merkle.naive_root(hashes[:size])
        for sequence in range(1, size + 1):
            merkle.verify_inclusion(sequence - 1, size, hashes[sequence - 1], tree.inclusion_proof(sequence, size), root)
        for old in range(0, size + 1):
            merkle.verify_consistency(old, size, tree.consistency_proof(old, size), merkle.naive_root(hashes[:old]), root)


def test_a_stored_node_that_lies_gives_a_proof_that_fails():
    for n in range(8):
        audit.record("test.step", data={"n": n})
    root = tree.root(8)
    MerkleNode.objects.filter(position=MerkleNode.position_of(1, 1)).update(hash="00" * 32)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(0, 8, leaves()[0], tree.inclusion_proof(1, 8), root)


def test_an_append_costs_the_same_queries_at_any_size():
    def queries_for_one_append():
        with CaptureQueriesContext(connection) as captured, transaction.atomic():
            audit.record("test.measured")
        return len(captured)

    audit.record("test.step")
    small = queries_for_one_append()  # size 1 -> 2
    for _ in range(61):
        audit.record("test.step")
    large = queries_for_one_append()  # size 63 -> 64: six merges, still one INSERT
    assert small == large


def test_a_proof_is_one_query_at_any_size():
    for _ in range(70):
        audit.record("test.step")
    counts = []
    for sequence, size in [(2, 3), (37, 70)]:
        with CaptureQueriesContext(connection) as captured:
            tree.inclusion_proof(sequence, size)
            tree.consistency_proof(sequence, size)
        counts.append(len(captured))
    assert counts == [2, 2]


def test_a_head_out_of_step_keeps_recording_without_the_tree():
    audit.record("test.step")
    ChainHead.objects.filter(pk=1).update(tree_size=0, compact_range=[])
    event = audit.record("test.next")
    head = ChainHead.objects.get(pk=1)
    assert event.sequence == 2 and head.tree_size == 0 and not tree.in_step(head)
    assert tree.rebuild() == 2
    assert tree.in_step(ChainHead.objects.get(pk=1)) and tree.root(2) == merkle.naive_root(leaves())


def test_audit_verify_recomputes_the_tree_and_names_the_first_event_it_differs_at():
    from io import StringIO

    from django.core.management import CommandError, call_command

    for n in range(9):
        audit.record("test.step", data={"n": n})
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "Merkle tree intact: 9 leaves verified." in out.getvalue()
    assert tree.verify() == (9, None)
    with transaction.atomic():
        MerkleNode.objects.filter(position=MerkleNode.position_of(0, 4)).update(hash="00" * 32)
        assert tree.verify() == (9, (5, "the stored Merkle node 8 does not match the events up to #5"))
        with pytest.raises(CommandError, match="Merkle tree broken at event #5"):
            call_command("audit_verify", stdout=StringIO())
        transaction.set_rollback(True)
    with transaction.atomic():
        ChainHead.objects.filter(pk=1).update(compact_range=["00" * 32, ChainHead.objects.get().compact_range[1]])
        assert tree.verify() == (9, (9, "the chain head's compact range is not the tree of the events"))
        transaction.set_rollback(True)
