"""C2SP tlog-cosignature v1 (audit/cosignature.py), offline: the signed message, key IDs, vkeys,
and the example of the spec (https://c2sp.org/tlog-cosignature) read back."""
import base64
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import checkpoint, cosignature, merkle

CP = checkpoint.Checkpoint("example.com/behind-the-sofa", 20852163,
                           base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="))


def test_the_signed_message_is_the_spec_s():
    # The example message of tlog-cosignature's "Ed25519 signed message" section.
    assert cosignature.message(CP.text(), 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")


def test_the_spec_s_example_line_parses_as_key_id_timestamp_and_signature():
    # The example cosignature line of the spec: 4-byte key ID, u64 big-endian timestamp, 64-byte signature.
    blob = base64.b64decode("jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZ"
                            "qhf5nNo0xUe+mbIUBkBIfZ+qnA==")
    assert len(blob) == 4 + 8 + 64
    assert struct.unpack(">Q", blob[4:12])[0] == 1679315147


def test_a_line_signed_here_verifies_and_a_changed_one_does_not():
    key = Ed25519PrivateKey.generate()
    line = cosignature.sign_line(CP, "w.example/1", key, 1700000000)
    note = CP.text() + "\n— example.com/behind-the-sofa " + base64.b64encode(b"\0" * 68).decode() + "\n" + line + "\n"
    cp, found = cosignature.cosigners(note, {"w.example/1": key.public_key()})
    assert (cp, found) == (CP, {"w.example/1": 1700000000})
    other = checkpoint.Checkpoint(CP.origin, CP.tree_size + 1, CP.root_hash)
    forged = other.text() + note[len(CP.text()):]
    with pytest.raises(cosignature.CosignatureError, match="does not verify"):
        cosignature.cosigners(forged, {"w.example/1": key.public_key()})
    # A line by a key nobody gave is skipped, not trusted.
    assert cosignature.cosigners(note, {"w.example/1": Ed25519PrivateKey.generate().public_key()})[1] == {}


def test_vkeys_round_trip_and_name_their_key():
    key = Ed25519PrivateKey.generate().public_key()
    text = cosignature.vkey("w.example/1", key)
    name, parsed = cosignature.parse_key(text)
    assert name == "w.example/1" and cosignature.raw_key(parsed) == cosignature.raw_key(key)
    raw = base64.b64encode(cosignature.raw_key(key)).decode()
    assert cosignature.raw_key(cosignature.parse_key(raw, "w.example/1")[1]) == cosignature.raw_key(key)
    for bad, name in [(text.replace("+", "+00", 1), None), (text, "someone-else"), (raw, None), ("+".join(["a"] * 3), None),
                      (raw[:-4], "w")]:
        with pytest.raises(cosignature.CosignatureError):
            cosignature.parse_key(bad, name)


def test_divergence_names_the_first_subtree_that_changed():
    honest = [merkle.leaf_hash(bytes([i])) for i in range(13)]
    forged = list(honest)
    forged[9] = merkle.leaf_hash(b"forged")  # event #10

    def nodes(leaves):
        compact, stored = merkle.CompactRange(), {}
        for leaf in leaves:
            stored.update(compact.append(leaf))
        return stored

    good, bad = nodes(honest), nodes(forged)
    cp = checkpoint.Checkpoint("o", 13, merkle.naive_root(honest))
    tiles = {node: good[node] for node in merkle.perfect_subtrees(0, 13)}
    assert cosignature.divergence(cp, tiles, good, {13: merkle.naive_root(honest)}) is None
    message = cosignature.divergence(cp, tiles, bad, {13: merkle.naive_root(forged)})
    assert "events #9..#12" in message  # 13 = 8 + 4 + 1: event #10 is in the second subtree
    assert "events #1..#13" in cosignature.divergence(cp, None, bad, {13: merkle.naive_root(forged)})
    # No root of size 13 stated: the shared subtrees are compared, the rest is named.
    assert "#9..#12" in cosignature.divergence(cp, tiles, {(3, 0): bad[(3, 0)], (2, 2): bad[(2, 2)]}, {})
    assert "a rewrite would be in events #9..#13" in cosignature.divergence(cp, tiles, {(3, 0): bad[(3, 0)]}, {})
