"""Checkpoints: the Merkle tree's size and root, signed, in the C2SP signed-note format
(https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note). No Django import: the offline
bundle verifier reads them with nothing but ``cryptography``.

A checkpoint is UTF-8 text, every line ending in a newline::

    <origin>                          e.g. "countersign.example.org/audit"
    <tree size>                       decimal, no leading zeros: the tree of events #1..#n
    <root hash>                       base64 (standard, padded) of the 32-byte RFC 9162 root
    time <ISO 8601 UTC>               an extension line: when the seal was taken
    (empty line)
    — <origin> <base64(key ID || signature)>

The lines before the empty one are the *note text*; the signature line starts with U+2014 (em
dash) and a space. The Ed25519 signature is over the note text's exact bytes. The key ID is the
first 4 bytes of SHA-256(<origin> || "\\n" || 0x01 || the 32-byte public key), 0x01 being the
signed-note signature type for Ed25519; a verifier skips signature lines whose name or key ID is not
the key it holds (a witness could add its own), and needs one that verifies.
"""
import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE_PREFIX = "\u2014 "
ED25519 = b"\x01"
MAX_NOTE_BYTES = 4096


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or whose signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.tree_size), base64.b64encode(self.root_hash).decode("ascii"), *self.extensions]
        return "".join(f"{line}\n" for line in lines)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519 + raw).digest()[:4]


def sign(checkpoint: Checkpoint, public_key: Ed25519PublicKey, sign_bytes) -> str:
    """The signed note: ``sign_bytes(message) -> raw 64-byte signature`` (the private key stays
    with the caller)."""
    text = checkpoint.text()
    signature = sign_bytes(text.encode("utf-8"))
    blob = base64.b64encode(key_id(checkpoint.origin, public_key) + signature).decode("ascii")
    return f"{text}\n{SIGNATURE_PREFIX}{checkpoint.origin} {blob}\n"


def parse(note: str) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]]]:
    """The checkpoint and its signature lines as (name, key ID, signature); nothing verified yet."""
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise CheckpointError(f"longer than {MAX_NOTE_BYTES} bytes")
    text, separator, signature_block = note.rpartition("\n\n")
    if not separator or not signature_block.endswith("\n"):
        raise CheckpointError("no signature block after an empty line")
    lines = text.split("\n")
    if len(lines) < 3 or any(line == "" or "\n" in line for line in lines):
        raise CheckpointError("a checkpoint needs an origin, a tree size and a root hash, one per line")
    origin, size, root = lines[:3]
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise CheckpointError(f"tree size {size!r} is not a decimal number")
    try:
        root_hash = base64.b64decode(root, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError("the root hash is not base64") from None
    if len(root_hash) != 32:
        raise CheckpointError("the root hash is not 32 bytes")
    signatures = []
    for line in signature_block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX) or line.count(" ") != 2:
            raise CheckpointError(f"malformed signature line {line!r}")
        name, blob = line[len(SIGNATURE_PREFIX):].split(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointError(f"the signature of {name!r} is not base64") from None
        if len(raw) < 5:
            raise CheckpointError(f"the signature of {name!r} is too short")
        signatures.append((name, raw[:4], raw[4:]))
    checkpoint = Checkpoint(origin, int(size), root_hash, tuple(lines[3:]))
    if checkpoint.text() != text + "\n":
        raise CheckpointError("the note text is not in canonical form")
    return checkpoint, signatures


def verify(note: str, public_key: Ed25519PublicKey, origin: str | None = None) -> Checkpoint:
    """The checkpoint, if a signature line by ``public_key`` for its origin verifies (and the origin
    is ``origin`` when given); raises ``CheckpointError`` otherwise."""
    checkpoint, signatures = parse(note)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"origin {checkpoint.origin!r}, expected {origin!r}")
    wanted = key_id(checkpoint.origin, public_key)
    message = checkpoint.text().encode("utf-8")
    for name, kid, signature in signatures:
        if name == checkpoint.origin and kid == wanted:
            try:
                public_key.verify(signature, message)
            except InvalidSignature:
                raise CheckpointError("the signature does not verify") from None
            return checkpoint
    raise CheckpointError("no signature by this key")
