"""bench/append.py (``make bench``'s append-path lines): the tree's maintenance costs one statement
and a bounded time per event, the same at a small and a large log; the lines say MISSED otherwise."""
import pytest

from audit import merkle, tree
from audit.models import AuditEvent, ChainHead, MerkleNode
from bench import append

SCALE = {"scale": "small", "events": 1024, "with_us": 400.0, "without_us": 300.0, "cost_us": 100.0,
         "statement_us": 100.0, "queries_with": 4, "queries_without": 3, "in_step": True}
RESULT = {"vendor": "postgresql", "rounds": 10, "batch": 40, "max_cost_statements": 1.5, "max_growth_statements": 0.5,
          "scales": [SCALE, {**SCALE, "scale": "large", "events": 1 << 20, "cost_us": 130.0}]}


def test_the_lines_are_ok_for_one_statement_more_and_a_flat_cost():
    lines = append.lines(RESULT)
    assert [ok for _, ok in lines] == [True, True, True]
    assert lines[1][0].startswith("[large] audit append with the Merkle tree at 1,048,576 events")


@pytest.mark.parametrize("change, missed", [
    ({"cost_us": 160.0}, [0]),  # more than 1.5 statements' worth at one scale
    ({"queries_with": 5}, [0]),  # more than one statement more
    ({"in_step": False}, [0]),
])
def test_a_scale_misses(change, missed):
    result = {**RESULT, "scales": [{**SCALE, **change}, RESULT["scales"][1]]}
    assert [i for i, (_, ok) in enumerate(append.lines(result)) if not ok][:1] == missed


def test_a_cost_that_grows_with_the_log_misses():
    result = {**RESULT, "scales": [{**SCALE, "cost_us": 50.0}, {**SCALE, "scale": "large", "cost_us": 140.0}]}
    assert [ok for _, ok in append.lines(result)] == [True, True, False]


@pytest.mark.django_db
def test_fill_and_append_with_and_without_the_tree(monkeypatch):
    monkeypatch.setenv("BENCH_APPEND_SIZES", "small=16,large=64")
    append.fill(64)
    assert (AuditEvent.objects.count(), MerkleNode.objects.count()) == (64, 127)
    with_tree, without, queries = append._rounds(2, 4)
    head = ChainHead.objects.get(pk=1)
    assert len(with_tree) == len(without) == 4 and queries[True] == queries[False] + 1
    assert head.sequence == 72 and tree.in_step(head)
    # With the tree, each append wrote its leaf: the leaves of the tree-maintained appends are there.
    leaves = {(0, s - 1) for s in AuditEvent.objects.filter(action="bench.append").values_list("sequence", flat=True)}
    assert len(tree.read_nodes(leaves)) == 4 and merkle.HASH_SIZE == 32
    with pytest.raises(SystemExit):
        monkeypatch.setenv("BENCH_APPEND_SIZES", "small=10")
        append._sizes()
