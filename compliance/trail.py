"""Checking a range of the audit trail against the chain and the seals (API.md ``audit-events/verify/``,
RULES.md L2), for a consumer who downloaded events ``from``…``to`` and wants the server's word on
them; docs/audit-events.md gives the same check offline, with the public key and nothing else.

What is checked, in order:

1. The events ``from``…``S`` are recomputed, where ``S`` is the sequence the first seal at or after
   ``to`` covers (``to`` itself when no seal covers it yet): no gap, each ``prev_hash`` the hash of
   the event before (the first one's, that of event ``from - 1``, or 64 zeros for event 1), each
   ``hash`` the SHA-256 of the event's content and ``prev_hash``.
2. That seal: its Ed25519 signature verifies with the server's public key and its ``head_hash`` is
   the hash of event ``S``. A hash commits to every event before it, so the seal vouches for the
   whole range.
3. The seals from that one to the latest: numbered without a gap, each covering the previous one's
   signature, each signature valid. The latest seal is the one to compare with a copy kept elsewhere.

Reading only; nothing is recorded or changed.
"""
from datetime import timezone as dt_timezone

from django.core.exceptions import ImproperlyConfigured, ValidationError

from audit import keys, signing
from audit.chain import GENESIS, compute_hash
from audit.models import AuditEvent, AuditSeal, ChainHead
from audit.seals import seal_message

MAX_SPAN = 100_000  # events recomputed by one request (about a second); audit_verify checks everything


def _seal_fields(seal: AuditSeal | None, public_key) -> dict | None:
    if seal is None:
        return None
    return {
        "number": seal.number,
        "created_at": seal.created_at.astimezone(dt_timezone.utc).isoformat(timespec="microseconds"),
        "sequence": seal.sequence,
        "head_hash": seal.head_hash,
        "prev_signature": seal.prev_signature,
        "key_fingerprint": seal.key_fingerprint,
        "signature": seal.signature,
        "signature_valid": public_key is not None and keys.is_valid(public_key, seal.signature, seal_message(seal)),
    }


def _walk(first: int, end: int, wanted: set[int]) -> tuple[int, dict | None, dict[int, str]]:
    """Recompute events ``first``…``end``: (events checked, first break or None, {sequence: hash}
    of the ``wanted`` events checked)."""
    if first == 1:
        prev_hash = GENESIS
    else:
        prev_hash = AuditEvent.objects.filter(sequence=first - 1).values_list("hash", flat=True).first()
        if prev_hash is None:
            return 0, {"sequence": first - 1, "problem": "missing (the event before the range)"}, {}
    expected, checked, hashes = first, 0, {}
    events = AuditEvent.objects.filter(sequence__gte=first, sequence__lte=end).order_by("sequence")
    for event in events.iterator(chunk_size=2000):
        if event.sequence != expected:
            return checked, {"sequence": expected, "problem": f"missing; next present is #{event.sequence}"}, hashes
        if event.prev_hash != prev_hash:
            return checked, {"sequence": event.sequence, "problem": "prev_hash does not match the previous event"}, hashes
        if compute_hash(event, prev_hash) != event.hash:
            return checked, {"sequence": event.sequence, "problem": "content does not match its hash"}, hashes
        prev_hash = event.hash
        if event.sequence in wanted:
            hashes[event.sequence] = event.hash
        expected += 1
        checked += 1
    if expected != end + 1:
        return checked, {"sequence": expected, "problem": "missing"}, hashes
    return checked, None, hashes


def _seal_chain(start: AuditSeal, public_key, expected_fingerprint: str) -> tuple[int, dict | None]:
    """The seals from ``start`` to the latest: (seals checked, first problem or None)."""
    prev, checked = None, 0
    for current in AuditSeal.objects.filter(number__gte=start.number).order_by("number").iterator():
        if prev is not None and current.number != prev.number + 1:
            return checked, {"seal": prev.number + 1, "problem": "missing"}
        if prev is not None and current.prev_signature != prev.signature:
            return checked, {"seal": current.number, "problem": "prev_signature is not the previous seal's signature"}
        if current.key_fingerprint != expected_fingerprint:
            return checked, {"seal": current.number, "problem": "signed by another key than the server's"}
        if not keys.is_valid(public_key, current.signature, seal_message(current)):
            return checked, {"seal": current.number, "problem": "signature does not verify"}
        prev, checked = current, checked + 1
    return checked, None


def verify_range(first: int, last: int) -> dict:
    """The check of the module docstring for events ``first``…``last``. Raises ``ValidationError``
    (400) for a range past the chain head or longer than ``MAX_SPAN`` with the walk to its seal."""
    head = ChainHead.objects.filter(pk=1).first()
    head_sequence = head.sequence if head is not None else 0
    if last > head_sequence:
        raise ValidationError({"to": [f"Beyond the chain head: the trail has {head_sequence} events."]})
    seal = AuditSeal.objects.filter(sequence__gte=last).order_by("number").first()
    end = seal.sequence if seal is not None else last
    if end - first + 1 > MAX_SPAN:
        raise ValidationError({"to": [
            f"Checking #{first}…#{last} means recomputing #{first}…#{end} (up to the seal that covers it); "
            f"at most {MAX_SPAN} events at once. Check a shorter range, or everything with manage.py audit_verify."
        ]})
    checked, broken, hashes = _walk(first, end, {last, end})
    try:
        public_key = signing.public_key()
        fingerprint = keys.fingerprint(public_key)
    except (ImproperlyConfigured, OSError, ValueError):
        public_key, fingerprint = None, ""
    latest = AuditSeal.objects.order_by("-number").first()
    seal_info = _seal_fields(seal, public_key)
    seal_problem, seals_checked = None, 0
    if seal is not None:
        seal_info["matches_chain"] = broken is None and hashes.get(seal.sequence) == seal.head_hash
        if public_key is None:
            seal_problem = {"seal": seal.number, "problem": "the server's public key is not available"}
        else:
            seals_checked, seal_problem = _seal_chain(seal, public_key, fingerprint)
            if seal_problem is None and not seal_info["matches_chain"] and broken is None:
                seal_problem = {"seal": seal.number, "problem": f"head_hash is not the hash of event #{seal.sequence}"}
    ok = broken is None and seal_problem is None
    return {
        "from": first,
        "to": last,
        "ok": ok,
        "sealed": ok and seal is not None,
        "checked": checked,
        "last_hash": hashes.get(last, ""),
        "break": broken,
        "seal": seal_info,
        "seals_checked": seals_checked,
        "seal_break": seal_problem,
        "latest_seal": _seal_fields(latest, public_key),
        "chain_head": {"sequence": head_sequence, "hash": head.hash if head is not None else GENESIS},
        "public_key_fingerprint": fingerprint,
    }
