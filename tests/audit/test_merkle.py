"""audit.merkle: RFC 9162 hashing and proofs, against transparency-dev/merkle's known answers
(tests/fixtures/merkle/README.md names the source and licence) and, for random sizes, against the
definition's naive recursion. No database."""
import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from audit import merkle
from audit.merkle import CompactRange, ProofError

VECTORS = json.loads((Path(__file__).parent.parent / "fixtures/merkle/transparency-dev-vectors.json").read_text())
LEAVES = [merkle.leaf_hash(bytes.fromhex(data)) for data in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(root) for root in VECTORS["roots"]]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def memory_reader(leaf_hashes):
    """A node store computed naively from all the leaves: the proofs' reference."""
    def read(wanted):
        return {(level, index): merkle.naive_root(leaf_hashes[index << level:(index + 1) << level])
                for level, index in wanted}
    return read


def naive_path(index, hashes):
    """RFC 9162 2.1.3.1 PATH(m, D[n]) as written, recursively."""
    if len(hashes) == 1:
        return []
    k = merkle._split(len(hashes))
    if index < k:
        return naive_path(index, hashes[:k]) + [merkle.naive_root(hashes[k:])]
    return naive_path(index - k, hashes[k:]) + [merkle.naive_root(hashes[:k])]


def naive_subproof(m, hashes, complete):
    """RFC 9162 2.1.4.1 SUBPROOF(m, D[n], b) as written."""
    n = len(hashes)
    if m == n:
        return [] if complete else [merkle.naive_root(hashes)]
    k = merkle._split(n)
    if m <= k:
        return naive_subproof(m, hashes[:k], complete) + [merkle.naive_root(hashes[k:])]
    return naive_subproof(m - k, hashes[k:], False) + [merkle.naive_root(hashes[:k])]


@pytest.mark.parametrize("case", VECTORS["hasher"], ids=lambda case: case["desc"])
def test_hasher_known_answers(case):
    if case["kind"] == "empty":
        got = merkle.EMPTY_ROOT
    elif case["kind"] == "leaf":
        got = merkle.leaf_hash(bytes.fromhex(case["data"]))
    else:
        got = merkle.node_hash(bytes.fromhex(case["left"]), bytes.fromhex(case["right"]))
    assert got.hex() == case["want"]


def test_roots_of_the_first_n_leaves():
    for size in range(1, 9):
        assert merkle.naive_root(LEAVES[:size]) == ROOTS[size - 1]
        assert merkle.root(size, memory_reader(LEAVES)) == ROOTS[size - 1]
        compact = CompactRange()
        for leaf in LEAVES[:size]:
            compact.append(leaf)
        assert compact.root() == ROOTS[size - 1]
    assert merkle.root(0, memory_reader([])) == merkle.EMPTY_ROOT == CompactRange().root()


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['leaf']}-of-{c['size']}")
def test_inclusion_known_answers(case):
    index, size = case["leaf"] - 1, case["size"]
    proof = [bytes.fromhex(value) for value in case["proof"]]
    assert merkle.inclusion_proof(index, size, memory_reader(LEAVES)) == proof
    merkle.verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size - 1])
    root = ROOTS[size - 1]
    probes = {  # transparency-dev's corruptInclusionProof
        "index - 1": (index - 1, size, LEAVES[index], proof, root),
        "index + 1": (index + 1, size, LEAVES[index], proof, root),
        "index ^ 2": (index ^ 2, size, LEAVES[index], proof, root),
        "size * 2": (index, size * 2, LEAVES[index], proof, root),
        "size // 2": (index, size // 2, LEAVES[index], proof, root),
        "wrong leaf": (index, size, b"WrongLeaf", proof, root),
        "empty root": (index, size, LEAVES[index], proof, merkle.EMPTY_ROOT),
        "random root": (index, size, LEAVES[index], proof, SOME_HASH),
        "trailing garbage": (index, size, LEAVES[index], proof + [b""], root),
        "trailing root": (index, size, LEAVES[index], proof + [root], root),
        "preceding garbage": (index, size, LEAVES[index], [b""] + proof, root),
        "preceding root": (index, size, LEAVES[index], [root] + proof, root),
    }
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes[f"proof[{i}] bit 3"] = (index, size, LEAVES[index], flipped, root)
    if proof:
        probes["removed component"] = (index, size, LEAVES[index], proof[:-1], root)
    if len(proof) > 1:
        probes["inserted component"] = (index, size, LEAVES[index], [proof[0], SOME_HASH] + proof[1:], root)
    accepted = []
    for desc, args in probes.items():
        try:
            merkle.verify_inclusion(*args)
            accepted.append(desc)
        except ProofError:
            pass
    assert accepted == []


@pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: f"{c['size1']}-to-{c['size2']}")
def test_consistency_known_answers(case):
    size1, size2 = case["size1"], case["size2"]
    proof = [bytes.fromhex(value) for value in case["proof"]]
    root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    assert merkle.consistency_proof(size1, size2, memory_reader(LEAVES)) == proof
    merkle.verify_consistency(size1, size2, proof, root1, root2)
    if not proof:
        return
    probes = {  # transparency-dev's corruptConsistencyProof
        "size1 - 1": (size1 - 1, size2, proof, root1, root2),
        "size1 + 1": (size1 + 1, size2, proof, root1, root2),
        "size1 ^ 2": (size1 ^ 2, size2, proof, root1, root2),
        "size2 * 2": (size1, size2 * 2, proof, root1, root2),
        "size2 // 2": (size1, size2 // 2, proof, root1, root2),
        "wrong root1": (size1, size2, proof, SOME_HASH, root2),
        "wrong root2": (size1, size2, proof, root1, SOME_HASH),
        "swapped roots": (size1, size2, proof, root2, root1),
        "empty proof": (size1, size2, [], root1, root2),
        "trailing garbage": (size1, size2, proof + [b""], root1, root2),
        "trailing root1": (size1, size2, proof + [root1], root1, root2),
        "trailing root2": (size1, size2, proof + [root2], root1, root2),
        "preceding garbage": (size1, size2, [b""] + proof, root1, root2),
        "preceding root1": (size1, size2, [root1] + proof, root1, root2),
        "preceding root2": (size1, size2, [root2] + proof, root1, root2),
        "preceding proof[0]": (size1, size2, [proof[0]] + proof, root1, root2),
        "truncated proof": (size1, size2, proof[:-1], root1, root2),
    }
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes[f"proof[{i}] bit 4"] = (size1, size2, flipped, root1, root2)
    accepted = []
    for desc, args in probes.items():
        try:
            merkle.verify_consistency(*args)
            accepted.append(desc)
        except ProofError:
            pass
    assert accepted == []


def test_consistency_edge_cases():
    merkle.verify_consistency(0, 0, [], merkle.EMPTY_ROOT, merkle.EMPTY_ROOT)
    merkle.verify_consistency(0, 5, [], merkle.EMPTY_ROOT, ROOTS[4])  # the empty tree: nothing to prove
    with pytest.raises(ProofError, match="cannot extend"):
        merkle.verify_consistency(2, 1, [], ROOTS[1], ROOTS[0])
    with pytest.raises(ProofError, match="two different roots"):
        merkle.verify_consistency(3, 3, [], ROOTS[2], ROOTS[3])
    with pytest.raises(ProofError, match="empty proof"):
        merkle.verify_consistency(3, 3, [ROOTS[0]], ROOTS[2], ROOTS[2])
    with pytest.raises(ProofError, match="not in a tree"):
        merkle.inclusion_proof(3, 3, memory_reader(LEAVES))


def test_compact_range_yields_every_perfect_subtree_once():
    compact, written = CompactRange(), {}
    leaves = [merkle.leaf_hash(bytes([n])) for n in range(37)]
    for leaf in leaves:
        completed = compact.append(leaf)
        assert len(completed) <= 1 + (compact.size - 1).bit_length()
        for node, value in completed:
            assert node not in written
            written[node] = value
    assert len(written) == 2 * 37 - bin(37).count("1")  # every perfect subtree of 37 leaves, < 2 per leaf
    assert written == memory_reader(leaves)(set(written))
    assert [written[node] for node in compact.nodes()] == compact.hashes
    again = CompactRange(compact.size, compact.hashes)
    assert again.root() == merkle.naive_root(leaves)
    with pytest.raises(ProofError):
        CompactRange(5, compact.hashes)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=300).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(1, n))))
def test_proofs_for_random_sizes_match_the_naive_recursion(sizes):
    new_size, index, old_size = sizes
    leaves = [merkle.leaf_hash(n.to_bytes(4, "big")) for n in range(new_size)]
    read = memory_reader(leaves)
    reads = []

    def counting(wanted):
        reads.append(len(wanted))
        return read(wanted)

    new_root, old_root = merkle.naive_root(leaves), merkle.naive_root(leaves[:old_size])
    assert merkle.root(new_size, read) == new_root

    path = merkle.inclusion_proof(index, new_size, counting)
    assert path == naive_path(index, leaves)
    merkle.verify_inclusion(index, new_size, leaves[index], path, new_root)

    proof = merkle.consistency_proof(old_size, new_size, counting)
    assert proof == (naive_subproof(old_size, leaves, True) if old_size < new_size else [])
    merkle.verify_consistency(old_size, new_size, proof, old_root, new_root)
    # O(log n): one read per proof, of at most about two nodes per level
    assert len(reads) <= 2 and all(count <= 2 * new_size.bit_length() for count in reads)
    if old_size < new_size:
        with pytest.raises(ProofError):
            merkle.verify_consistency(old_size, new_size, proof, merkle.leaf_hash(b"other"), new_root)
    if new_size > 1:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(index, new_size, merkle.leaf_hash(b"other"), path, new_root)
