"""The Merkle tree over the audit chain, kept in the database (the hashing is ``audit.merkle``).

Event #s is leaf s - 1; its leaf data is the 32 raw bytes of its chain ``hash``. The chain head
carries the tree's size and its compact range (the right edge: one root per perfect subtree), so an
append costs a fixed amount whatever the log's size: one leaf hash per event, fewer than one node
hash on average (at most log2 n for one event), and one bulk INSERT of the nodes it completes,
inside the head's lock the append already holds. Every perfect subtree is stored as it completes
(``MerkleNode``), so a proof for any tree size up to the head is one query of O(log n) rows.

If the head's ``tree_size`` ever differs from its ``sequence`` (a head moved by hand, a database
loaded without the tree), appends go on without growing the tree rather than fail, and a seal
refuses to sign a checkpoint until ``rebuild()`` has brought the tree back in step.
"""
from collections.abc import Iterable

from audit import merkle
from audit.models import AuditEvent, ChainHead, MerkleNode


def _compact(head: ChainHead) -> merkle.CompactRange:
    return merkle.CompactRange(head.tree_size, [bytes.fromhex(value) for value in head.compact_range])


def in_step(head: ChainHead) -> bool:
    return head.tree_size == head.sequence


def grow(head: ChainHead, events: Iterable[AuditEvent]) -> dict:
    """Append ``events`` (just chained after ``head``, whose row is locked) to the tree: writes the
    nodes they complete and returns the head fields to update (none when the tree is out of step)."""
    if not in_step(head):
        return {}
    compact = _compact(head)
    rows = [
        MerkleNode(position=MerkleNode.position_of(level, index), hash=value.hex())
        for event in events
        for (level, index), value in compact.append(merkle.event_leaf(event.hash))
    ]
    MerkleNode.objects.bulk_create(rows)
    return {"tree_size": compact.size, "compact_range": [value.hex() for value in compact.hashes]}


def read_nodes(wanted: set[merkle.Node]) -> dict[merkle.Node, bytes]:
    """The hashes of the perfect subtrees ``wanted``, in one query; absent ones are left out."""
    by_position = {MerkleNode.position_of(level, index): (level, index) for level, index in wanted}
    rows = MerkleNode.objects.filter(position__in=list(by_position)).values_list("position", "hash")
    return {by_position[position]: bytes.fromhex(value) for position, value in rows}


def root(tree_size: int) -> bytes:
    return merkle.root(tree_size, read_nodes)


def inclusion_proof(sequence: int, tree_size: int) -> list[bytes]:
    """The proof that event #sequence is leaf ``sequence - 1`` of the tree of ``tree_size``."""
    return merkle.inclusion_proof(sequence - 1, tree_size, read_nodes)


def consistency_proof(old_size: int, new_size: int) -> list[bytes]:
    return merkle.consistency_proof(old_size, new_size, read_nodes)


def proof_with_roots(ranges: list[merkle.Range], sizes: tuple[int, ...]) -> tuple[list[bytes], list[bytes]]:
    """A proof's hashes and the roots of the trees of ``sizes``, from one read of O(log n) nodes."""
    wanted = merkle.needed_nodes(ranges) | {node for size in sizes for node in merkle.perfect_subtrees(0, size)}
    nodes = read_nodes(wanted) if wanted else {}
    proof = [merkle.range_hash(start, end, nodes) for start, end in ranges]
    roots = [merkle.range_hash(0, size, nodes) if size else merkle.EMPTY_ROOT for size in sizes]
    return proof, roots


def rebuild(batch_size: int = 5000) -> int:
    """Recompute the whole tree from the events up to the head, in the caller's transaction with
    the head locked (for a database loaded without it, and for tests). Returns the tree size."""
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        return 0
    MerkleNode.objects.all().delete()
    compact, rows = merkle.CompactRange(), []
    hashes = AuditEvent.objects.filter(sequence__lte=head.sequence).order_by("sequence").values_list("hash", flat=True)
    for value in hashes.iterator(chunk_size=batch_size):
        rows += [MerkleNode(position=MerkleNode.position_of(level, index), hash=node.hex())
                 for (level, index), node in compact.append(merkle.event_leaf(value))]
        if len(rows) >= batch_size:
            MerkleNode.objects.bulk_create(rows)
            rows = []
    MerkleNode.objects.bulk_create(rows)
    ChainHead.objects.filter(pk=1).update(tree_size=compact.size, compact_range=[h.hex() for h in compact.hashes])
    return compact.size


def verify(batch_size: int = 5000):
    """Recompute every node from the events up to the head and compare with the stored ones and the
    head's right edge. Returns ``(leaves checked, None)`` or ``(checked, (sequence, problem))`` naming
    the first event whose subtree differs."""
    head = ChainHead.objects.filter(pk=1).first()
    if head is None:
        return 0, None
    if not in_step(head):
        return 0, (head.tree_size + 1, f"the tree ends at #{head.tree_size} but the chain at #{head.sequence}")
    compact, pending, checked = merkle.CompactRange(), [], 0
    hashes = AuditEvent.objects.filter(sequence__lte=head.sequence).order_by("sequence").values_list("hash", flat=True)

    def compare(batch):
        stored = dict(MerkleNode.objects.filter(position__in=[p for p, _, _ in batch]).values_list("position", "hash"))
        for position, value, sequence in batch:
            if stored.get(position) != value:
                return sequence, f"the stored Merkle node {position} does not match the events up to #{sequence}"
        return None

    for value in hashes.iterator(chunk_size=batch_size):
        checked += 1
        pending += [(MerkleNode.position_of(level, index), node.hex(), checked)
                    for (level, index), node in compact.append(merkle.event_leaf(value))]
        if len(pending) >= batch_size:
            if problem := compare(pending):
                return checked, problem
            pending = []
    if problem := compare(pending):
        return checked, problem
    if checked != head.tree_size or [h.hex() for h in compact.hashes] != head.compact_range:
        return checked, (checked, "the chain head's compact range is not the tree of the events")
    return checked, None
