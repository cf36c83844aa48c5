"""Offline checks of Merkle proofs and checkpoints (docs/architecture.md "Checkpoints and proofs").

No Django, no database: an auditor runs these with the server's public key and the answers of
``audit-events/{sequence}/proof/`` and ``audit/consistency/`` (or the proofs inside an evidence
bundle, ``compliance/bundle_verify.py``). Each raises ``ContinuityError`` naming what failed.
"""
from audit import checkpoint, merkle


class ContinuityError(ValueError):
    pass


def _hex(value, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise ContinuityError(f"{what} is not hex") from None
    if len(raw) != merkle.HASH_SIZE:
        raise ContinuityError(f"{what} is not a {merkle.HASH_SIZE}-byte hash")
    return raw


def signed_checkpoint(note: str, public_key, origin: str | None = None) -> checkpoint.Checkpoint:
    try:
        return checkpoint.verify(note, public_key, origin)
    except checkpoint.CheckpointError as exc:
        raise ContinuityError(f"checkpoint: {exc}") from None


def check_inclusion(answer: dict, public_key=None, root_hash: bytes | None = None) -> None:
    """``answer`` as ``audit-events/{sequence}/proof/`` gives it. The root it leads to must be
    ``root_hash`` when given, else the signed checkpoint's (when ``public_key`` is given), else the
    answer's own ``root_hash`` (which proves only that the server's numbers agree)."""
    try:
        sequence, size, proof = int(answer["sequence"]), int(answer["tree_size"]), answer["proof"]
        leaf = merkle.event_leaf(answer["hash"])
    except (KeyError, TypeError, ValueError):
        raise ContinuityError("not an inclusion proof") from None
    if root_hash is None and public_key is not None:
        if not answer.get("checkpoint"):
            raise ContinuityError(f"no signed checkpoint for tree size {size}")
        signed = signed_checkpoint(answer["checkpoint"], public_key)
        if signed.tree_size != size:
            raise ContinuityError(f"the checkpoint is of tree size {signed.tree_size}, not {size}")
        root_hash = signed.root_hash
    if root_hash is None:
        root_hash = _hex(answer.get("root_hash"), "root_hash")
    hashes = [_hex(value, f"proof[{i}]") for i, value in enumerate(proof)]
    try:
        merkle.verify_inclusion(sequence - 1, size, leaf, hashes, root_hash)
    except merkle.ProofError as exc:
        raise ContinuityError(f"event #{sequence}: {exc}") from None


def check_consistency(old: checkpoint.Checkpoint, new: checkpoint.Checkpoint, proof: list[str]) -> None:
    """``new`` extends ``old``. When it does not, the message names the first event that may differ:
    the two trees agree on no leaf the proof can vouch for past ``first_divergent`` (see there)."""
    hashes = [_hex(value, f"proof[{i}]") for i, value in enumerate(proof)]
    try:
        merkle.verify_consistency(old.tree_size, new.tree_size, hashes, old.root_hash, new.root_hash)
    except merkle.ProofError as exc:
        raise ContinuityError(f"the tree of {new.tree_size} events does not extend the tree of "
                              f"{old.tree_size}: {exc}") from None


def check_consistency_answer(answer: dict, public_key) -> None:
    """``answer`` as ``audit/consistency/`` gives it, both checkpoints signed by ``public_key``."""
    if not answer.get("from_checkpoint") or not answer.get("to_checkpoint"):
        raise ContinuityError("both tree sizes need a signed checkpoint")
    old = signed_checkpoint(answer["from_checkpoint"], public_key)
    new = signed_checkpoint(answer["to_checkpoint"], public_key)
    if (old.tree_size, new.tree_size) != (answer.get("from"), answer.get("to")):
        raise ContinuityError("the checkpoints are not of the sizes the proof is for")
    check_consistency(old, new, answer.get("proof") or [])
