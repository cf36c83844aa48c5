"""Seals: the chain head signed with the server's Ed25519 key (RULES.md L2).

The hash chain alone shows that events were not changed *unless* someone rewrote an event and
recomputed every later hash. A seal fixes the head at a point in time with a signature only the
private key can make, so such a rewrite no longer matches the sealed ``head_hash``. Each seal also
covers the previous seal's signature, so seals form their own chain (like CloudTrail's digests),
and every seal is announced by an ``audit.sealed`` event in the hash chain, so removing the latest
seal is visible from the events themselves.

What a seal signs (an auditor can re-check it with the public key and nothing else):

    message = UTF-8 bytes of the JSON object
        {"created_at": ..., "head_hash": ..., "key_fingerprint": ..., "number": ...,
         "prev_signature": ..., "sequence": ...}
    serialised with sorted keys, no whitespace (separators "," and ":"), non-ASCII kept as is,
    where
        number          seal number, 1, 2, 3, ... (integer)
        created_at      ISO 8601 in UTC with microseconds, e.g. "2026-11-27T21:44:00.123456+00:00"
        sequence        the last audit event the seal covers (integer)
        head_hash       that event's ``hash`` (64 hex)
        prev_signature  the previous seal's ``signature``; "" for seal 1
        key_fingerprint SHA-256 (hex) of the raw 32-byte public key (``audit.keys.fingerprint``)
    signature = base64 (standard alphabet, padded) of Ed25519(private key, message)

Python equivalent: ``json.dumps(fields, sort_keys=True, separators=(",", ":"),
ensure_ascii=False).encode("utf-8")`` (see ``message``).

Since the Merkle tree (``audit.merkle``, ``audit.tree``), a seal also signs a *checkpoint*: the
tree of events #1..#sequence, its size and RFC 9162 root, as a C2SP signed note
(``audit.checkpoint``, origin ``settings.AUDIT_CHECKPOINT_ORIGIN``), stored in ``checkpoint`` with
``tree_size`` and ``root_hash``. Before signing, the leaves since the previous seal are checked
against the events and the new tree is proved consistent with the previous checkpoint. Seals taken
before the tree have no checkpoint; their JSON message above is unchanged and still verifies.

A seal is taken only when something was recorded since the previous one other than that seal's own
``audit.sealed`` event, so an idle system gets no new seal every hour. Before signing, the events
recorded since the previous seal are recomputed from its sealed hash: a seal never vouches for a
head that does not follow from the last one (``SealRefused``).
"""
import json
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from itertools import islice

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from audit import checkpoint, keys, merkle, timestamps, tree
from audit.chain import Break, compute_hash
from audit.models import AuditEvent, AuditSeal, ChainHead

SEALED_ACTION = "audit.sealed"


@dataclass(frozen=True)
class SealBreak(Break):
    """A break in the seals; ``sequence`` is the audit event concerned, ``seal`` the seal number."""

    seal: int | None = None

    def __str__(self):
        return f"seal {self.seal}: {self.problem}"


class SealRefused(Exception):
    """The events since the previous seal do not follow from its sealed hash; nothing was signed."""

    def __init__(self, broken: Break):
        super().__init__(f"Refusing to seal: {broken}")
        self.broken = broken


def _iso(value: datetime) -> str:
    return value.astimezone(dt_timezone.utc).isoformat(timespec="microseconds")


def message(
    *, number: int, created_at: datetime | str, sequence: int, head_hash: str, prev_signature: str,
    key_fingerprint: str,
) -> bytes:
    """The exact bytes a seal signs (format in the module docstring)."""
    payload = {
        "number": number,
        "created_at": created_at if isinstance(created_at, str) else _iso(created_at),
        "sequence": sequence,
        "head_hash": head_hash,
        "prev_signature": prev_signature,
        "key_fingerprint": key_fingerprint,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def seal_message(seal: AuditSeal) -> bytes:
    return message(
        number=seal.number, created_at=seal.created_at, sequence=seal.sequence, head_hash=seal.head_hash,
        prev_signature=seal.prev_signature, key_fingerprint=seal.key_fingerprint,
    )


def _nothing_new(last: AuditSeal, head: ChainHead) -> bool:
    """True when the only event after ``last`` is its own announcement."""
    if head.sequence != last.sequence + 1:
        return False  # new events, or a head that moved backwards (which the check then reports)
    return AuditEvent.objects.filter(sequence=head.sequence, action=SEALED_ACTION).exists()


def _check_since(last: AuditSeal | None, head: ChainHead, batch_size: int = 5000) -> Break | None:
    """Recompute the events after ``last`` (all of them for the first seal) up to the head. The
    first of them must be ``last``'s announcement: a log cut back to before it is not sealed again."""
    if last is not None and not _announced_now(last):
        return Break(last.sequence + 1, None, f"the announcement of seal {last.number} is missing")
    sequence = last.sequence if last is not None else 0
    prev_hash = last.head_hash if last is not None else "0" * 64
    events = AuditEvent.objects.filter(sequence__gt=sequence).order_by("sequence")
    for event in events.iterator(chunk_size=batch_size):
        sequence += 1
        if event.sequence != sequence:
            return Break(sequence, None, f"missing; next present is #{event.sequence}")
        if event.prev_hash != prev_hash:
            return Break(event.sequence, event.pk, "prev_hash does not match the previous event")
        if compute_hash(event, prev_hash) != event.hash:
            return Break(event.sequence, event.pk, "content does not match its hash")
        prev_hash = event.hash
    if sequence != head.sequence or prev_hash != head.hash:
        return Break(sequence + 1, None, f"chain head says #{head.sequence} but the log ends at #{sequence}")
    return None


def seal(at: datetime | None = None) -> AuditSeal | None:
    """Sign the current chain head; returns the new seal, or None when there is nothing new to seal.

    Holds the chain head's row lock (the lock ``audit.record`` takes) from reading the head to
    recording ``audit.sealed``, so no event slips in between and the announcement is always the
    event right after the sealed head. Raises ``SealRefused`` if the events since the previous seal
    do not verify."""
    from audit import signing  # the private key is needed only here

    at = at or timezone.now()
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().filter(pk=1).first()
        if head is None or head.sequence == 0:
            return None
        last = AuditSeal.objects.order_by("-number").first()
        if last is not None and _nothing_new(last, head):
            return None
        broken = _check_since(last, head) or _check_tree(last, head)
        if broken is not None:
            raise SealRefused(broken)
        root = merkle.CompactRange(head.tree_size, [bytes.fromhex(h) for h in head.compact_range]).root()
        note = checkpoint.sign(
            checkpoint.Checkpoint(settings.AUDIT_CHECKPOINT_ORIGIN, head.tree_size, root, (f"time {_iso(at)}",)),
            signing.public_key(), signing.sign_raw,
        )
        fields = {
            "number": last.number + 1 if last is not None else 1,
            "created_at": at,
            "sequence": head.sequence,
            "head_hash": head.hash,
            "prev_signature": last.signature if last is not None else "",
            "key_fingerprint": signing.fingerprint(),
        }
        new = AuditSeal(**fields, signature=signing.sign(message(**fields)), tree_size=head.tree_size,
                        root_hash=root.hex(), checkpoint=note)
        new.save(force_insert=True)
        audit.record(
            SEALED_ACTION, target=new, at=at,
            data={"number": new.number, "sequence": new.sequence, "head_hash": new.head_hash,
                  "signature": new.signature, "key_fingerprint": new.key_fingerprint,
                  "tree_size": new.tree_size, "root_hash": new.root_hash},
        )
        if last is not None and last.key_fingerprint != new.key_fingerprint:
            _key_changed(last, new, at)
        # The outside timestamp (audit.timestamps) is asked for once the seal is committed.
        transaction.on_commit(lambda: timestamps.enqueue(new.number), robust=True)
    return new


def _check_tree(last: AuditSeal | None, head: ChainHead) -> Break | None:
    """The tree must be in step with the chain, its leaves since ``last`` must be those events'
    (one read), and it must extend ``last``'s checkpoint (one consistency proof, O(log n) reads)."""
    if not tree.in_step(head):
        return Break(head.tree_size + 1, None,
                     f"the Merkle tree ends at #{head.tree_size} but the chain at #{head.sequence}")
    first = last.sequence + 1 if last is not None else 1
    leaves = tree.read_nodes({(0, sequence - 1) for sequence in range(first, head.sequence + 1)})
    events = AuditEvent.objects.filter(sequence__gte=first, sequence__lte=head.sequence)
    for sequence, value in events.order_by("sequence").values_list("sequence", "hash").iterator(chunk_size=5000):
        if leaves.get((0, sequence - 1)) != merkle.event_leaf(value):
            return Break(sequence, None, "its Merkle leaf is not the leaf of its hash")
    if last is not None and last.root_hash:
        try:
            new_root = merkle.CompactRange(head.tree_size, [bytes.fromhex(h) for h in head.compact_range]).root()
            proof = tree.consistency_proof(last.tree_size, head.tree_size)
            merkle.verify_consistency(last.tree_size, head.tree_size, proof, bytes.fromhex(last.root_hash), new_root)
        except merkle.ProofError as exc:
            return Break(last.sequence + 1, None, f"the tree does not extend seal {last.number}'s checkpoint: {exc}")
    return None


def _key_changed(last: AuditSeal, new: AuditSeal, at: datetime) -> None:
    """The signing key in use is a control (RULES.md K1) that lives in a file, outside any service:
    a seal signed with another key than the one before is recorded and raises a critical alert, so
    a swapped key is detected where it cannot be prevented (after the announcement, which must be
    the event right after the sealed head)."""
    from audit.alerts import raise_alert

    audit.record("signing_key.changed", target=new, at=at,
                 data={"before": {"key_fingerprint": last.key_fingerprint},
                       "after": {"key_fingerprint": new.key_fingerprint}, "seal": new.number})
    raise_alert("signing_key_changed", severity="critical", at=at,
                subject=f"Seal #{new.number} is signed with another key than seal #{last.number}",
                details={"before": last.key_fingerprint, "after": new.key_fingerprint},
                dedupe_key=f"signing_key_changed:{new.key_fingerprint}")


def _announced_now(current: AuditSeal) -> bool:
    """Whether the event right after the sealed head announces ``current``. Asked again only for a
    seal taken after the announcements were read (or whose announcement was removed)."""
    event = AuditEvent.objects.filter(sequence=current.sequence + 1, action=SEALED_ACTION).first()
    return event is not None and event.data.get("number") == current.number and (
        event.data.get("signature") == current.signature
    )


def _server_public_key():
    from audit import signing

    return signing.public_key()


def _checkpoint_problem(current: AuditSeal, public_key) -> str:
    """What is wrong with a seal's checkpoint ("" when nothing; seals from before the tree have none):
    its signature, its size and root against the seal's fields, and the root against the tree."""
    if not current.checkpoint:
        return "its checkpoint is missing" if current.root_hash or current.tree_size else ""
    try:
        signed = checkpoint.verify(current.checkpoint, public_key)
    except checkpoint.CheckpointError as exc:
        return f"its checkpoint does not verify: {exc}"
    if (signed.tree_size, signed.root_hash.hex()) != (current.tree_size, current.root_hash) or (
        current.tree_size != current.sequence
    ):
        return "its checkpoint does not match the seal's tree size and root"
    try:
        if tree.root(signed.tree_size) != signed.root_hash:
            return f"the Merkle tree of {signed.tree_size} events does not have the checkpointed root"
    except merkle.ProofError as exc:
        return f"the Merkle tree of {signed.tree_size} events cannot be read: {exc}"
    return ""


def verify_seals(public_key=None, batch_size: int = 1000) -> tuple[int, SealBreak | None]:
    """Check every seal against the events. Returns (seals checked, first break or None).

    ``public_key`` (an Ed25519PublicKey) defaults to the server's; it is loaded only if there is a
    seal to check. The ``audit.sealed`` events are read before the seals: a seal and its
    announcement commit together, so a seal taken while this runs can add a seal whose announcement
    was not read (asked for again, ``_announced_now``) but never an announcement without its seal."""
    announced: dict[object, list[AuditEvent]] = {}
    for event in AuditEvent.objects.filter(action=SEALED_ACTION).order_by("sequence").iterator():
        announced.setdefault(event.data.get("number"), []).append(event)

    checked = 0
    prev = None
    expected_fingerprint = None
    seals = AuditSeal.objects.order_by("number").iterator(chunk_size=batch_size)
    while True:
        chunk = list(islice(seals, batch_size))
        if not chunk:
            break
        hashes = dict(
            AuditEvent.objects.filter(sequence__in={s.sequence for s in chunk}).values_list("sequence", "hash")
        )
        for current in chunk:
            expected = prev.number + 1 if prev is not None else 1
            if current.number != expected:
                return checked, SealBreak(current.sequence, None, f"missing; next present is seal {current.number}",
                                          seal=expected)
            if current.prev_signature != (prev.signature if prev is not None else ""):
                return checked, SealBreak(current.sequence, None, "prev_signature is not the previous seal's signature",
                                          seal=current.number)
            if public_key is None:
                public_key = _server_public_key()
            if expected_fingerprint is None:
                expected_fingerprint = keys.fingerprint(public_key)
            if current.key_fingerprint != expected_fingerprint:
                return checked, SealBreak(
                    current.sequence, None,
                    f"signed by another key (fingerprint {current.key_fingerprint}, expected {expected_fingerprint})",
                    seal=current.number,
                )
            if not keys.is_valid(public_key, current.signature, seal_message(current)):
                return checked, SealBreak(current.sequence, None, "signature does not verify", seal=current.number)
            problem = _checkpoint_problem(current, public_key)
            if problem:
                return checked, SealBreak(current.sequence, None, problem, seal=current.number)
            if prev is not None and current.sequence <= prev.sequence:
                return checked, SealBreak(current.sequence, None, f"covers event #{current.sequence}, not after "
                                          f"seal {prev.number}'s #{prev.sequence}", seal=current.number)
            if current.sequence not in hashes:
                return checked, SealBreak(current.sequence, None, f"sealed event #{current.sequence} is missing",
                                          seal=current.number)
            if hashes[current.sequence] != current.head_hash:
                return checked, SealBreak(current.sequence, None,
                                          f"head_hash does not match the hash of event #{current.sequence}",
                                          seal=current.number)
            events = announced.pop(current.number, [])
            for event in events:
                if event.data.get("signature") != current.signature:
                    return checked, SealBreak(event.sequence, event.pk, f"event #{event.sequence} announced seal "
                                              f"{current.number} with another signature", seal=current.number)
                if event.data.get("root_hash", "") != current.root_hash:
                    return checked, SealBreak(event.sequence, event.pk, f"event #{event.sequence} announced seal "
                                              f"{current.number} with another checkpoint root", seal=current.number)
            if not any(event.sequence == current.sequence + 1 for event in events) and not _announced_now(current):
                return checked, SealBreak(current.sequence + 1, None, f"its announcement, event "
                                          f"#{current.sequence + 1}, is missing", seal=current.number)
            prev = current
            checked += 1

    if announced:  # announced in the chain, but no such seal any more
        number, (event, *_) = next(iter(announced.items()))
        return checked, SealBreak(event.sequence, event.pk, f"missing; event #{event.sequence} announced it",
                                  seal=number)
    return checked, None
