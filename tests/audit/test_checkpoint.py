"""Seals sign a checkpoint of the Merkle tree (audit/checkpoint.py, C2SP signed-note format), and
``verify_seals`` checks it against the tree; a seal is refused when the tree does not follow the
events or does not extend the previous checkpoint."""
import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from django.conf import settings

import audit
from audit import checkpoint, merkle, seals, signing, tree
from audit.models import AuditEvent, ChainHead, MerkleNode
from tests.audit.rawsql import drop_triggers, rolled_back, sql
from tests.audit.sealtools import (  # noqa: F401 (fixtures)
    drop_seal_triggers,
    other_key,
    rewrite_event,
    sealed,
    signing_key,
)

pytestmark = pytest.mark.django_db


def event_leaves(size):
    hashes = AuditEvent.objects.filter(sequence__lte=size).order_by("sequence").values_list("hash", flat=True)
    return [merkle.event_leaf(h) for h in hashes]


def test_a_seal_signs_a_checkpoint_in_the_documented_format(signing_key):
    for n in range(5):
        audit.record("test.step", data={"n": n})
    seal = seals.seal()

    root = merkle.naive_root(event_leaves(5))
    assert (seal.tree_size, seal.root_hash) == (5, root.hex())
    text, _, signature_line = seal.checkpoint.partition("\n\n")
    origin = settings.AUDIT_CHECKPOINT_ORIGIN
    assert text.split("\n") == [origin, "5", base64.b64encode(root).decode(), f"time {seal.created_at.isoformat()}"]
    # The signature line rebuilt by hand: "— <name> base64(key ID || Ed25519 signature)".
    raw_key = signing.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(origin.encode() + b"\n\x01" + raw_key).digest()[:4]
    assert signature_line.startswith(f"\u2014 {origin} ") and signature_line.endswith("\n")
    blob = base64.b64decode(signature_line.split(" ")[2])
    assert blob[:4] == key_id
    signing.public_key().verify(blob[4:], (text + "\n").encode())
    assert checkpoint.verify(seal.checkpoint, signing.public_key(), origin) == checkpoint.Checkpoint(
        origin, 5, root, (f"time {seal.created_at.isoformat()}",))
    announced = AuditEvent.objects.get(sequence=6)
    assert announced.data["root_hash"] == root.hex() and announced.data["tree_size"] == 5


def test_a_checkpoint_that_was_changed_or_signed_by_another_key_is_refused(signing_key):
    audit.record("test.step")
    note = seals.seal().checkpoint
    key = signing.public_key()
    with pytest.raises(checkpoint.CheckpointError, match="does not verify"):
        checkpoint.verify(note.replace("\n1\n", "\n2\n", 1), key)
    with pytest.raises(checkpoint.CheckpointError, match="no signature by this key"):
        checkpoint.verify(note, other_key().public_key())
    with pytest.raises(checkpoint.CheckpointError, match="origin"):
        checkpoint.verify(note, key, origin="elsewhere/audit")
    for broken in (note.replace("\n\n", "\n"), note.replace("\u2014", "-"), note.replace("\n1\n", "\n01\n", 1),
                   "x\n" * 3000):
        with pytest.raises(checkpoint.CheckpointError):
            checkpoint.verify(broken, key)


def test_verify_seals_checks_the_checkpoint_against_the_tree(sealed):
    assert seals.verify_seals() == (3, None)
    with rolled_back():  # a stored node rewritten: the tree no longer has the sealed root
        MerkleNode.objects.filter(position=MerkleNode.position_of(1, 0)).update(hash="00" * 32)
        checked, broken = seals.verify_seals()
        assert checked == 0
        assert str(broken) == "seal 1: the Merkle tree of 3 events does not have the checkpointed root"
    with rolled_back():  # a checkpoint rewritten without the key
        drop_seal_triggers()
        sql("UPDATE audit_auditseal SET checkpoint = REPLACE(checkpoint, '\n6\n', '\n7\n') WHERE number = 2")
        checked, broken = seals.verify_seals()
        assert checked == 1 and str(broken) == "seal 2: its checkpoint does not verify: the signature does not verify"
    with rolled_back():  # a checkpoint stripped: its announcement still names the root
        drop_seal_triggers()
        sql("UPDATE audit_auditseal SET checkpoint = '', root_hash = '', tree_size = NULL WHERE number = 3")
        checked, broken = seals.verify_seals()
        assert checked == 2 and str(broken) == "seal 3: event #10 announced seal 3 with another checkpoint root"


def test_seals_without_a_checkpoint_still_verify(sealed):
    """Seals from before the tree: no checkpoint, and an announcement without a root."""
    with rolled_back():
        drop_seal_triggers()
        drop_triggers()
        sql("UPDATE audit_auditseal SET checkpoint = '', root_hash = '', tree_size = NULL WHERE number = 3")
        data = {k: v for k, v in AuditEvent.objects.get(sequence=10).data.items() if k not in ("root_hash", "tree_size")}
        rewrite_event(10, data)
        assert seals.verify_seals() == (3, None)


def test_a_seal_is_refused_when_the_tree_does_not_follow_the_events(signing_key):
    audit.record("test.step")
    seals.seal()
    audit.record("test.next")
    with rolled_back():
        ChainHead.objects.filter(pk=1).update(tree_size=0, compact_range=[])
        with pytest.raises(seals.SealRefused, match="the Merkle tree ends at #0 but the chain at #3"):
            seals.seal()
    with rolled_back():
        MerkleNode.objects.filter(position=MerkleNode.position_of(0, 2)).update(hash="00" * 32)
        with pytest.raises(seals.SealRefused, match="event #3 .*its Merkle leaf is not the leaf of its hash"):
            seals.seal()
    with rolled_back():  # the head's right edge rewritten: its root no longer extends seal 1's checkpoint
        head = ChainHead.objects.get(pk=1)
        ChainHead.objects.filter(pk=1).update(compact_range=["00" * 32, head.compact_range[1]])
        with pytest.raises(seals.SealRefused, match="does not extend seal 1's checkpoint"):
            seals.seal()
    assert seals.seal().tree_size == 3
    assert tree.root(3) == merkle.naive_root(event_leaves(3))
