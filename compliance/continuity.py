"""Offline checks of Merkle proofs and checkpoints (docs/architecture.md "Checkpoints and proofs").

No Django, no database: an auditor runs these with the server's public key and the answers of
``audit-events/{sequence}/proof/`` and ``audit/consistency/`` (or the proofs inside an evidence
bundle, ``compliance/bundle_verify.py``). Each raises ``ContinuityError`` naming what failed.
"""
from audit import checkpoint, cosignature, merkle


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
    """``new`` extends ``old`` (RFC 9162 consistency proof), or ``ContinuityError``."""
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


def _fold(tiles, size: int, what: str) -> bytes:
    """The root of the tree of ``size`` events from its perfect subtrees (largest first), after
    checking they are exactly the tiling of events #1..#size."""
    expected = [((index << level) + 1, (index + 1) << level) for level, index in merkle.perfect_subtrees(0, size)]
    try:
        got = [(int(t["first"]), int(t["last"])) for t in tiles]
        hashes = [_hex(t["hash"], f"{what} subtree") for t in tiles]
    except (KeyError, TypeError, ValueError):
        raise ContinuityError(f"{what}: malformed subtrees") from None
    if got != expected:
        raise ContinuityError(f"{what}: the subtrees do not tile events #1..#{size}")
    if not hashes:
        return merkle.EMPTY_ROOT
    result = hashes[-1]
    for value in reversed(hashes[:-1]):
        result = merkle.node_hash(value, result)
    return result


def check_bundle(section: dict, public_key) -> checkpoint.Checkpoint:
    """A bundle's ``transparency`` section (compliance/evidence/transparency.py): its checkpoint is
    signed by ``public_key``, its subtrees fold into the checkpoint's root, every inclusion proof
    leads to it, and the tree extends the ``previous`` bundle's as it says."""
    try:
        signed = signed_checkpoint(section["checkpoint"], public_key)
        size, root = int(section["tree_size"]), _hex(section["root_hash"], "root_hash")
        inclusion, previous = section.get("inclusion") or [], section.get("previous")
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ContinuityError("malformed transparency section") from None
    if (signed.tree_size, signed.root_hash) != (size, root):
        raise ContinuityError("the checkpoint is not of the tree size and root the manifest states")
    if _fold(section.get("subtrees"), size, "transparency") != root:
        raise ContinuityError("the subtrees do not fold into the checkpoint's root")
    for answer in inclusion:
        check_inclusion({**answer, "tree_size": size} if isinstance(answer, dict) else {}, root_hash=root)
    if previous is not None:
        try:
            old_size, old_root = int(previous["tree_size"]), _hex(previous["root_hash"], "previous root_hash")
        except (KeyError, TypeError, ValueError):
            raise ContinuityError("malformed previous checkpoint") from None
        if _fold(previous.get("subtrees"), old_size, "previous") != old_root:
            raise ContinuityError("the previous subtrees do not fold into the previous root")
        check_consistency(checkpoint.Checkpoint(signed.origin, old_size, old_root), signed,
                          previous.get("consistency_proof") or [])
    if section.get("witnessed") is not None:
        _check_witnessed_entry(section["witnessed"], signed, public_key)
    return signed


def _check_witnessed_entry(entry, signed: checkpoint.Checkpoint, public_key) -> None:
    """The bundle's latest witnessed checkpoint: signed by the log, its subtrees folding into its
    root, and extended by the bundle's tree (its cosignatures need the witnesses' keys)."""
    try:
        cp = signed_checkpoint(entry["checkpoint"], public_key)
        size, root = int(entry["tree_size"]), _hex(entry["root_hash"], "witnessed root_hash")
    except (KeyError, TypeError, ValueError):
        raise ContinuityError("malformed witnessed checkpoint") from None
    if (cp.tree_size, cp.root_hash) != (size, root):
        raise ContinuityError("the witnessed checkpoint is not of the tree size and root the manifest states")
    if _fold(entry.get("subtrees"), size, "witnessed") != root:
        raise ContinuityError("the witnessed subtrees do not fold into the witnessed root")
    check_consistency(cp, signed, entry.get("consistency_proof") or [])


def witness_keys(texts) -> dict:
    """``{name: key}`` from witness vkeys (``name+keyid+base64``)."""
    try:
        return dict(cosignature.parse_key(text) for text in texts)
    except cosignature.CosignatureError as exc:
        raise ContinuityError(f"witness key: {exc}") from None


def check_witnessed(witnessed: dict, public_key, keys: dict):
    """A witnessed checkpoint an auditor kept (``audit.cosignature``): the log's signature, at least
    one cosignature by ``keys``, its subtrees. Returns ``(checkpoint, subtrees, {witness: time})``."""
    try:
        return cosignature.check_witnessed(witnessed, public_key, keys)
    except cosignature.CosignatureError as exc:
        raise ContinuityError(f"witnessed checkpoint: {exc}") from None


def check_against_witnessed(witnessed: dict, section: dict, public_key, keys: dict) -> dict:
    """The bundle (its ``transparency`` section, checked by ``check_bundle``) agrees with a
    checkpoint witnesses cosigned: where it states the tree of that size, the roots match, and the
    cosignatures it carries verify with ``keys``. A contradiction names the range of events where
    the histories diverge (``cosignature.divergence``). Returns who cosigned the witnessed one when."""
    cp, wnodes, found = check_witnessed(witnessed, public_key, keys)
    signed = check_bundle(section, public_key)
    if cp.tree_size > signed.tree_size:
        raise ContinuityError(f"the bundle's tree ({signed.tree_size} events) is older than the witnessed checkpoint "
                              f"({cp.tree_size}): check a later bundle")
    nodes, roots = {}, {}
    for part in (section, section.get("previous"), section.get("witnessed")):
        if part:
            size = int(part["tree_size"])
            tiles = cosignature.tiles(size, part["subtrees"], "bundle")
            nodes.update(tiles)
            roots[size] = cosignature.fold(size, tiles)
    problem = cosignature.divergence(cp, wnodes, nodes, roots)
    if problem:
        raise ContinuityError(problem)
    if section.get("witnessed"):
        try:
            cosignature.cosigners(section["witnessed"]["checkpoint"], keys)
        except cosignature.CosignatureError as exc:
            raise ContinuityError(f"the bundle's witnessed checkpoint: {exc} (re-signed after the witness "
                                  "cosigned it)") from None
    return found


def check_extends(earlier: dict, later: dict, public_key) -> None:
    """The later bundle's log extends the earlier bundle's (both ``transparency`` sections, each
    already checked by ``check_bundle``). When the histories differ, names the first range of events
    where they do: the first perfect subtree of the earlier tree whose hash the later log changed."""
    old, new = check_bundle(earlier, public_key), check_bundle(later, public_key)
    if new.tree_size < old.tree_size:
        raise ContinuityError(f"the later bundle's tree ({new.tree_size} events) is smaller than the earlier's "
                              f"({old.tree_size})")
    if new.tree_size == old.tree_size:
        if new.root_hash != old.root_hash:
            raise ContinuityError(_divergence(earlier["subtrees"], later["subtrees"], old.tree_size))
        return
    previous = later.get("previous") or {}
    if previous.get("tree_size") != old.tree_size:
        raise ContinuityError(f"the later bundle proves continuity from tree size {previous.get('tree_size')}, "
                              f"not from the earlier bundle's {old.tree_size}")
    if previous["root_hash"] != old.root_hash.hex():
        raise ContinuityError(_divergence(earlier["subtrees"], previous["subtrees"], old.tree_size))


def _divergence(earlier_tiles, later_tiles, size: int) -> str:
    for mine, theirs in zip(earlier_tiles, later_tiles, strict=True):
        if mine["hash"] != theirs["hash"]:
            return (f"the histories diverge in events #{mine['first']}..#{mine['last']}: the later log's tree of "
                    f"{size} events is not the one the earlier bundle's checkpoint signed")
    return f"the later log's tree of {size} events is not the one the earlier bundle's checkpoint signed"
