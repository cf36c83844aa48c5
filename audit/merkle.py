"""A Merkle tree over the audit chain, as RFC 9162 (Certificate Transparency 2.0) section 2.1 defines it.

No Django import: the offline bundle verifier (``compliance/bundle_verify.py``) uses this module on an
auditor's machine with nothing but the standard library.

Hashing (RFC 9162 2.1.1), SHA-256 throughout:

    MTH({})        = SHA-256()                       the empty tree
    leaf hash      = SHA-256(0x00 || leaf data)
    node hash      = SHA-256(0x01 || left || right)
    MTH(D[n])      = node(MTH(D[0:k]), MTH(D[k:n]))  k the largest power of two smaller than n

Leaves are numbered from 0; audit event #s (sequences start at 1) is leaf s - 1, and its leaf data
is the 32 raw bytes of the event's chain ``hash`` (which covers the event's canonical JSON and the
previous hash, so the leaf commits to the whole history before it too). The tree of the first n
events has ``tree_size`` n.

A *perfect subtree* is addressed ``(level, index)``: it covers leaves ``[index * 2**level,
(index + 1) * 2**level)``; level 0 is a leaf hash. Once written such a node never changes, so the
server stores each as it completes (``audit.tree``) and any proof for any tree size is assembled from
at most about 2·log2(n) of them (``needed_nodes``), read in one query.

Proofs are lists of 32-byte hashes in RFC 9162's order (2.1.3.1 PATH, 2.1.4.1 SUBPROOF), checked with
the RFC's verification algorithms (2.1.3.2, 2.1.4.2). The test vectors are transparency-dev/merkle's
(tests/fixtures/merkle/README.md).
"""
import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]  # (level, index) of a perfect subtree
Range = tuple[int, int]  # leaves [start, end)
NodeReader = Callable[[set[Node]], dict[Node, bytes]]


class ProofError(ValueError):
    """A proof that does not verify, or a request no proof can answer; the message says why."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def event_leaf(chain_hash_hex: str) -> bytes:
    """The leaf hash of an audit event, from its chain ``hash`` (64 hex)."""
    return leaf_hash(bytes.fromhex(chain_hash_hex))


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def naive_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH by the definition's recursion, from every leaf hash: for tests and small trees."""
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = _split(len(leaf_hashes))
    return node_hash(naive_root(leaf_hashes[:k]), naive_root(leaf_hashes[k:]))


# --- Which subtrees a proof needs -------------------------------------------------------------------

def perfect_subtrees(start: int, end: int) -> list[Node]:
    """The perfect subtrees that tile leaves ``[start, end)``, left to right, each as large as its
    alignment allows. For a range of the RFC's recursion (``start`` a multiple of a power of two larger
    than the range) folding their hashes from the right gives the range's MTH."""
    nodes = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length()
        while 1 << level > end - start:
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose MTHs are the inclusion proof of leaf ``index`` in the tree of ``size``
    leaves (RFC 9162 2.1.3.1), from the leaf's sibling up."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    path: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo += k
    return path[::-1]


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees whose MTHs are the consistency proof between the trees of ``old_size`` and
    ``new_size`` leaves (RFC 9162 2.1.4.1 SUBPROOF); empty when there is nothing to prove."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"a tree of size {new_size} cannot extend one of size {old_size}")
    if old_size in (0, new_size):
        return []
    proof: list[Range] = []
    lo, hi, complete = 0, new_size, True
    while old_size != hi:
        k = _split(hi - lo)
        if old_size <= lo + k:
            proof.append((lo + k, hi))
            hi = lo + k
        else:
            proof.append((lo, lo + k))
            lo, complete = lo + k, False
    if not complete:
        proof.append((lo, hi))
    return proof[::-1]


def needed_nodes(ranges: Iterable[Range]) -> set[Node]:
    return {node for start, end in ranges for node in perfect_subtrees(start, end)}


def range_hash(start: int, end: int, nodes: dict[Node, bytes]) -> bytes:
    """MTH(D[start:end]) from the stored perfect subtrees."""
    tiles = perfect_subtrees(start, end)
    try:
        result = nodes[tiles[-1]]
        for tile in reversed(tiles[:-1]):
            result = node_hash(nodes[tile], result)
    except KeyError as missing:
        raise ProofError(f"tree node {missing.args[0]} is missing") from None
    return result


def _assemble(ranges: list[Range], read: NodeReader) -> list[bytes]:
    nodes = read(needed_nodes(ranges)) if ranges else {}
    return [range_hash(start, end, nodes) for start, end in ranges]


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """``read(set of (level, index))`` returns those nodes' hashes (one call per proof)."""
    return _assemble(inclusion_ranges(index, size), read)


def consistency_proof(old_size: int, new_size: int, read: NodeReader) -> list[bytes]:
    return _assemble(consistency_ranges(old_size, new_size), read)


def root(size: int, read: NodeReader) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return range_hash(0, size, read(set(perfect_subtrees(0, size))))


# --- Verification (RFC 9162 2.1.3.2 and 2.1.4.2) ----------------------------------------------------

def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} is not a {HASH_SIZE}-byte hash")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    _check_hash(leaf, "the leaf hash")
    for position, value in enumerate(proof):
        _check_hash(value, f"proof[{position}]")
    expected = len(inclusion_ranges(index, size))
    if len(proof) != expected:
        raise ProofError(f"the proof has {len(proof)} hashes, a tree of size {size} needs {expected}")
    fn, sn, result = index, size - 1, leaf
    for value in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            result = node_hash(value, result)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, value)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path to the root")
    return result


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> None:
    """Raises ``ProofError`` unless ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of
    ``size`` leaves whose root is ``root_hash``."""
    _check_hash(root_hash, "the root hash")
    if root_from_inclusion_proof(index, size, leaf, proof) != root_hash:
        raise ProofError(f"the proof of leaf {index} does not lead to the root of the tree of size {size}")


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes,
                       new_root: bytes) -> None:
    """Raises ``ProofError`` unless ``proof`` shows the tree of ``new_size`` leaves with root
    ``new_root`` extends the tree of ``old_size`` leaves with root ``old_root``."""
    _check_hash(old_root, "the old root hash")
    _check_hash(new_root, "the new root hash")
    for position, value in enumerate(proof):
        _check_hash(value, f"proof[{position}]")
    if not 0 <= old_size <= new_size:
        raise ProofError(f"a tree of size {new_size} cannot extend one of size {old_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("trees of the same size need an empty proof")
        if old_root != new_root:
            raise ProofError(f"two different roots for the tree of size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("the empty tree needs an empty proof")
        return
    if not proof:
        raise ProofError("an empty proof cannot show one tree extends another")
    expected = len(consistency_ranges(old_size, new_size))
    if len(proof) != expected:
        raise ProofError(f"the proof has {len(proof)} hashes, sizes {old_size} to {new_size} need {expected}")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first subtree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for value in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(value, fr), node_hash(value, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, value)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path to the root")
    if fr != old_root:
        raise ProofError(f"the proof does not lead to the old root (tree size {old_size})")
    if sr != new_root:
        raise ProofError(f"the proof does not lead to the new root (tree size {new_size})")


# --- The right edge, for appending ------------------------------------------------------------------

class CompactRange:
    """The roots of the perfect subtrees that tile ``[0, size)``, largest first (one per set bit of
    ``size``): all a writer needs to append a leaf and to compute the root."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()):
        if len(hashes) != bin(size).count("1"):
            raise ProofError(f"a compact range of size {size} has {bin(size).count('1')} hashes, not {len(hashes)}")
        self.size = size
        self.hashes = list(hashes)

    def nodes(self) -> list[Node]:
        return perfect_subtrees(0, self.size)

    def append(self, leaf: bytes) -> list[tuple[Node, bytes]]:
        """Add one leaf hash; returns the perfect subtrees it completes, the leaf itself first
        (``1 + trailing ones of the old size`` of them: fewer than 2 per leaf on average)."""
        leaf_index = self.size
        completed = [((0, leaf_index), leaf)]
        value, level, size = leaf, 0, self.size
        while size & 1:  # each trailing one of the old size is a subtree the new leaf completes
            value = node_hash(self.hashes.pop(), value)
            size, level = size >> 1, level + 1
            completed.append(((level, leaf_index >> level), value))
        self.hashes.append(value)
        self.size += 1
        return completed

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for value in reversed(self.hashes[:-1]):
            result = node_hash(value, result)
        return result

