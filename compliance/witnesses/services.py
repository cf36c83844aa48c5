"""Storing witnesses' cosignatures (docs/architecture.md "Witnesses"). A witness pulls a checkpoint
(``GET audit/checkpoints/latest/``), checks it extends the last one it cosigned (``audit/consistency/``),
adds its C2SP cosignature line and posts the note back (``POST audit/cosignatures/``). The note's
text must be exactly a checkpoint a seal signed; every cosignature line on it must be by an active
witness and verify with its registered key; each is stored once, with a timestamp later than the
witness's previous one. Anything else is refused with its reason and nothing is stored."""
import base64
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from audit import checkpoint, cosignature
from audit.models import AuditSeal
from compliance.witnesses.models import Cosignature, Witness
from core.errors import Denied, InvalidState, Reason

MAX_CLOCK_SKEW_SECONDS = 600


def _seal_of(cp: checkpoint.Checkpoint) -> AuditSeal | None:
    for seal in AuditSeal.objects.filter(tree_size=cp.tree_size).exclude(checkpoint=""):
        if checkpoint.parse(seal.checkpoint)[0] == cp:
            return seal
    return None


def _is_log_line(cp: checkpoint.Checkpoint, seal: AuditSeal, name: str, kid: bytes) -> bool:
    """The log's own signature line (the seal's), which is not a cosignature."""
    return name == cp.origin and any(line[:2] == (name, kid) for line in checkpoint.parse(seal.checkpoint)[1])


def cosign(*, actor, note: str, at: datetime | None = None) -> list[Cosignature]:
    """Verify and store the cosignatures on ``note``; returns the new rows. Raises
    ``ValidationError`` (unreadable note, no cosignature line, a time in the future), ``Denied``
    (``unknown_checkpoint``, ``unknown_witness``, ``bad_signature``) or ``InvalidState``
    (``already_cosigned``, ``stale_timestamp``)."""
    at = at or timezone.now()
    try:
        cp, lines = checkpoint.parse(note if isinstance(note, str) else "")
    except checkpoint.CheckpointError as exc:
        raise ValidationError({"checkpoint": [f"Not a signed checkpoint note: {exc}."]}) from None
    seal = _seal_of(cp)
    if seal is None:
        raise Denied(Reason("unknown_checkpoint", f"No seal signed this checkpoint (tree size {cp.tree_size})."))
    lines = [line for line in lines if not _is_log_line(cp, seal, line[0], line[1])]
    if not lines:
        raise ValidationError({"checkpoint": ["No cosignature line besides the log's own signature."]})
    with transaction.atomic():
        witnesses = {w.name: w for w in Witness.objects.select_for_update().filter(
            name__in=[name for name, _, _ in lines], is_active=True).order_by("pk")}
        reasons, verified = [], []
        for name, kid, blob in lines:
            witness = witnesses.get(name)
            if witness is None or not witness.key_is_valid():
                reasons.append(Reason("unknown_witness", f"{name!r} is not an active witness."))
                continue
            try:
                timestamp = cosignature.verify(cp, name, kid, blob, witness.key())
            except cosignature.CosignatureError as exc:
                reasons.append(Reason("bad_signature", f"{exc}."))
                continue
            verified.append((witness, timestamp, kid + blob))
        if reasons:
            raise Denied(reasons, detail="The cosignatures were refused; none was stored.")
        rows = []
        for witness, timestamp, raw in verified:
            if timestamp > at.timestamp() + MAX_CLOCK_SKEW_SECONDS:
                raise ValidationError({"checkpoint": [f"{witness.name}'s cosignature is dated in the future."]})
            if Cosignature.objects.filter(witness=witness, seal_number=seal.number).exists():
                raise InvalidState(f"{witness.name} already cosigned seal {seal.number}.", code="already_cosigned")
            latest = witness.cosignatures.order_by("-timestamp").values_list("timestamp", flat=True).first()
            if latest is not None and timestamp <= latest:
                raise InvalidState(f"{witness.name}'s cosignature is not later than its previous one ({latest}): "
                                   "a replay, or a witness clock that went back.", code="stale_timestamp")
            line = f"{checkpoint.SIGNATURE_PREFIX}{witness.name} {base64.b64encode(raw).decode('ascii')}"
            rows.append(Cosignature.objects.create(witness=witness, seal_number=seal.number, tree_size=cp.tree_size,
                                                   timestamp=timestamp, line=line, received_at=at))
            audit.record("checkpoint.cosigned", actor=actor, target=witness, at=at, data={
                "witness": witness.name, "seal": seal.number, "tree_size": cp.tree_size,
                "root_hash": cp.root_hash.hex(), "timestamp": timestamp})
    return rows


def witnessed_note(seal: AuditSeal, rows) -> str:
    """The seal's checkpoint with the cosignature lines ``rows`` appended (a C2SP note with several
    signatures: what witnesses and auditors keep)."""
    return seal.checkpoint + "".join(f"{row.line}\n" for row in rows)
