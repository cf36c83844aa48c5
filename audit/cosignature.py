"""Witnesses' cosignatures of checkpoints, as C2SP tlog-cosignature v1 defines them for Ed25519
(https://c2sp.org/tlog-cosignature), and the offline check of a *witnessed checkpoint*. No Django
import: ``compliance/continuity.py`` and the bundle verifier use it on an auditor's machine.

A cosignature is one more signature line under a checkpoint (``audit.checkpoint``)::

    — <witness name> base64(key ID || u64 timestamp, big-endian || 64-byte Ed25519 signature)

    key ID    = SHA-256(<witness name> || "\\n" || 0x04 || 32-byte public key)[:4]
    message   = "cosignature/v1\\n" || "time <timestamp>\\n" || the checkpoint's note text

``timestamp`` is when the witness signed, in POSIX seconds. A witness's key is configured as a C2SP
vkey, ``<name>+<hex key ID>+base64(0x04 || public key)``, or as the base64 of the raw 32 bytes.

A *witnessed checkpoint* is what ``GET /api/v1/audit/checkpoints/latest/`` answers in JSON, kept by
an auditor or a witness: ``checkpoint`` (the note, the log's signature line and the cosignature
lines), ``tree_size``, ``root_hash`` and ``subtrees`` (the tree's perfect subtrees, largest first,
``[{first, last, hash}]``, which must fold into the root). The subtrees are what lets a verifier
name *where* a later history differs from it (``divergence``): the first subtree whose hash the
later log changed holds the rewritten event.
"""
import base64
import binascii
import hashlib
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import checkpoint, merkle

COSIGNATURE_V1 = b"\x04"
HEADER = "cosignature/v1"
MAX_TIMESTAMP = 2**63 - 1


class CosignatureError(ValueError):
    """A key, cosignature or witnessed checkpoint that cannot be read or does not verify."""


def raw_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + COSIGNATURE_V1 + raw_key(public_key)).digest()[:4]


def vkey(name: str, public_key: Ed25519PublicKey) -> str:
    """The C2SP vkey of a witness's cosigning key."""
    return f"{name}+{key_id(name, public_key).hex()}+{base64.b64encode(COSIGNATURE_V1 + raw_key(public_key)).decode()}"


def parse_key(text: str, name: str | None = None) -> tuple[str, Ed25519PublicKey]:
    """``(name, key)`` from a vkey (whose name must be ``name`` when given) or, with ``name``, from
    the base64 of a raw 32-byte Ed25519 key."""
    text = (text or "").strip()
    parts = text.split("+", 2)  # base64 may hold "+" too; the name and the hex key ID never do
    try:
        if len(parts) == 3 and len(parts[1]) == 8 and all(c in "0123456789abcdefABCDEF" for c in parts[1]):
            key_name, kid, blob = parts
            raw = base64.b64decode(blob, validate=True)
            if raw[:1] != COSIGNATURE_V1 or len(raw) != 33:
                raise CosignatureError("a vkey of a cosignature/v1 key has type 0x04 and 32 key bytes")
            key = Ed25519PublicKey.from_public_bytes(raw[1:])
            if not key_name or key_id(key_name, key).hex() != kid.lower():
                raise CosignatureError("the vkey's key ID is not the one of its name and key")
            if name is not None and key_name != name:
                raise CosignatureError(f"the vkey names {key_name!r}, not {name!r}")
            return key_name, key
        if name is None:
            raise CosignatureError("a raw key needs the witness's name; give a vkey (name+keyid+key)")
        raw = base64.b64decode(text, validate=True)
        if len(raw) != 32:
            raise CosignatureError("a raw Ed25519 public key is 32 bytes")
        return name, Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        if isinstance(exc, CosignatureError):
            raise
        raise CosignatureError("not a vkey (name+keyid+base64) nor a base64 Ed25519 public key") from None


def message(note_text: str, timestamp: int) -> bytes:
    return f"{HEADER}\ntime {timestamp}\n{note_text}".encode("utf-8")


def sign_line(cp: checkpoint.Checkpoint, name: str, private_key, timestamp: int) -> str:
    """A witness's signature line for ``cp`` (what a witness does; used by tests and the docs)."""
    signature = private_key.sign(message(cp.text(), timestamp))
    blob = key_id(name, private_key.public_key()) + struct.pack(">Q", timestamp) + signature
    return f"{checkpoint.SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode('ascii')}"


def verify(cp: checkpoint.Checkpoint, name: str, kid: bytes, blob: bytes, public_key: Ed25519PublicKey) -> int:
    """The timestamp of a cosignature line (``name``, key ID, the rest of its bytes) by
    ``public_key``; raises ``CosignatureError`` unless it verifies."""
    if kid != key_id(name, public_key):
        raise CosignatureError(f"the line of {name!r} is not signed by its registered key (key ID)")
    if len(blob) != 8 + 64:
        raise CosignatureError(f"the cosignature of {name!r} is not a timestamp and an Ed25519 signature")
    (timestamp,) = struct.unpack(">Q", blob[:8])
    if timestamp > MAX_TIMESTAMP:
        raise CosignatureError(f"the cosignature of {name!r} has a timestamp beyond 2^63 - 1")
    try:
        public_key.verify(blob[8:], message(cp.text(), timestamp))
    except InvalidSignature:
        raise CosignatureError(f"the cosignature of {name!r} does not verify") from None
    return timestamp


def cosigners(note: str, witness_keys: dict[str, Ed25519PublicKey]) -> tuple[checkpoint.Checkpoint, dict[str, int]]:
    """The checkpoint and ``{witness name: timestamp}`` for every line by one of ``witness_keys``
    (name to key) that verifies; a line by such a key that does not verify is an error, lines by
    others are skipped."""
    try:
        cp, lines = checkpoint.parse(note)
    except checkpoint.CheckpointError as exc:
        raise CosignatureError(f"checkpoint: {exc}") from None
    found = {}
    for name, kid, blob in lines:
        key = witness_keys.get(name)
        if key is not None and kid == key_id(name, key):
            found[name] = verify(cp, name, kid, blob, key)
    return cp, found


def tiles(size: int, listed, what: str) -> dict[merkle.Node, bytes]:
    """The perfect subtrees ``[{first, last, hash}]`` of the tree of ``size`` events, checked to be
    exactly its tiling (events #1..#size), as ``{(level, index): hash}``."""
    expected = merkle.perfect_subtrees(0, size)
    try:
        got = [(int(t["first"]), int(t["last"])) for t in listed]
        hashes = [bytes.fromhex(t["hash"]) for t in listed]
    except (KeyError, TypeError, ValueError):
        raise CosignatureError(f"{what}: malformed subtrees") from None
    if got != [((index << level) + 1, (index + 1) << level) for level, index in expected] or any(
            len(h) != merkle.HASH_SIZE for h in hashes):
        raise CosignatureError(f"{what}: the subtrees do not tile events #1..#{size}")
    return dict(zip(expected, hashes, strict=True))


def fold(size: int, nodes: dict[merkle.Node, bytes]) -> bytes:
    return merkle.range_hash(0, size, nodes) if size else merkle.EMPTY_ROOT


def check_witnessed(witnessed: dict, log_key: Ed25519PublicKey, witness_keys: dict[str, Ed25519PublicKey],
                    ) -> tuple[checkpoint.Checkpoint, dict[merkle.Node, bytes] | None, dict[str, int]]:
    """A witnessed checkpoint (module docstring): signed by the log's key, cosigned by at least one
    of ``witness_keys``, its subtrees (when given) folding into its root. Returns the checkpoint,
    its subtrees (or None) and who cosigned when."""
    if not isinstance(witnessed, dict) or not isinstance(witnessed.get("checkpoint"), str):
        raise CosignatureError("not a witnessed checkpoint (a JSON object with a checkpoint note)")
    if not witness_keys:
        raise CosignatureError("a witnessed checkpoint is checked with the witnesses' keys (none given)")
    note = witnessed["checkpoint"]
    try:
        cp = checkpoint.verify(note, log_key)
    except checkpoint.CheckpointError as exc:
        raise CosignatureError(f"the log's signature: {exc}") from None
    _, found = cosigners(note, witness_keys)
    if not found:
        raise CosignatureError(f"no cosignature by any of the witnesses {sorted(witness_keys)}")
    nodes = None
    if witnessed.get("subtrees") is not None:
        nodes = tiles(cp.tree_size, witnessed["subtrees"], "the witnessed checkpoint")
        if fold(cp.tree_size, nodes) != cp.root_hash:
            raise CosignatureError("the witnessed checkpoint's subtrees do not fold into its root")
    return cp, nodes, found


def _span(node: merkle.Node) -> tuple[int, int]:
    """The events (first, last) a perfect subtree covers."""
    level, index = node
    return (index << level) + 1, (index + 1) << level


def divergence(cp: checkpoint.Checkpoint, witnessed_nodes: dict | None, other: dict[merkle.Node, bytes],
               other_roots: dict[int, bytes]) -> str | None:
    """Where another history (``other``: perfect subtrees it vouches for, ``other_roots``: roots it
    states for some tree sizes) contradicts the witnessed checkpoint ``cp``; None when it agrees.

    When the other history states the root of the witnessed size and it differs, the first of the
    witnessed subtrees whose hash it changed names the range of events rewritten (all of #1..#n
    without subtrees). When it states no root of that size, it cannot be confirmed: subtrees it
    shares are compared, and the range after the last agreeing one is named."""
    size = cp.tree_size
    ordered = merkle.perfect_subtrees(0, size)
    if size in other_roots:
        if other_roots[size] == cp.root_hash:
            return None
        for node in ordered if witnessed_nodes else ():
            if node in other and other[node] != witnessed_nodes[node]:
                first, last = _span(node)
                return f"the histories diverge in events #{first}..#{last}: the later log's tree of {size} events " \
                       "is not the one the witnesses cosigned"
        return f"the histories diverge in events #1..#{size}: the later log's tree of {size} events is not the one " \
               "the witnesses cosigned"
    agreed = 0
    for node in ordered if witnessed_nodes else ():
        if node not in other:
            break
        first, last = _span(node)
        if other[node] != witnessed_nodes[node]:
            return f"the histories diverge in events #{first}..#{last}: the later log changed a subtree the " \
                   "witnesses cosigned"
        agreed = last
    return f"nothing proves the later log extends the witnessed tree of {size} events: events #1..#{agreed} agree " \
           f"with it, a rewrite would be in events #{agreed + 1}..#{size}" if agreed < size else None
