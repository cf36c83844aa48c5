"""The manifest's ``transparency`` section: the checkpoint a bundle was built at and the proofs that
tie it to the log and to the previous bundle of the same framework (docs/architecture.md
"Checkpoints and proofs"; checked offline by ``compliance.continuity.check_bundle`` and, given the
earlier bundle, ``check_extends``)::

    "transparency": {
      "checkpoint": "<the latest seal's signed checkpoint>",
      "tree_size": n, "root_hash": "<hex>",
      "subtrees": [{"first": 1, "last": 8, "hash": "<hex>"}, ...],   the tree of n events as its
                   perfect subtrees, largest first (they fold into root_hash)
      "inclusion": [{"sequence": s, "hash": "<event hash>", "proof": [...]}, ...],
      "previous": {"export_id": id, "tree_size": m, "root_hash": "<hex>",
                   "subtrees": [...],            the tree of m events, as *this* log now holds it
                   "consistency_proof": [...]},   RFC 9162, from m to n
      "timestamps": [{"seal": number, "tree_size": t, "checkpoint": "<that seal's signed checkpoint>",
                      "authority": "<name>", "token": "<base64 DER TimeStampResp>"}, ...],
      "witnessed": {"seal": s, "tree_size": w, "root_hash": "<hex>",
                    "checkpoint": "<that seal's note with the witnesses' cosignature lines>",
                    "subtrees": [...], "consistency_proof": [...]},   from w to n
      "cosignatures": [{"witness": name, "timestamp": t, "line": "<C2SP cosignature line>"}, ...]
    }

``witnessed`` is the latest checkpoint no later than this one that a witness cosigned
(``compliance.witnesses``), and ``cosignatures`` its cosignatures; both absent when none was. The
cosignatures are checked offline with the witnesses' own keys (``bundle_verify --witness-key``).

``inclusion`` is a bounded subset of the events the bundle cites: the first and the last audit
event of the period within the checkpoint (at most two proofs of O(log n) hashes each; any other
event's proof is one ``audit-events/{sequence}/proof/`` call away). ``previous`` is the latest
finished bundle of the same framework built at a checkpoint no later than this one; absent for the
first. A bundle built before any seal has a checkpoint carries no section at all.

``timestamps`` are the RFC 3161 tokens outside authorities gave for seals' checkpoints
(``audit.timestamps``; checked offline by ``compliance.timestamp_check`` with ``bundle_verify
--tsa-certificate``), oldest first: those of the latest ``TIMESTAMPED_SEALS`` seals up to this
checkpoint, and of the seal at the previous bundle's checkpoint and the one before it, so a
rewrite since the previous bundle is named between two stamped checkpoints. Empty when no
authority is configured or none has answered yet.
"""
import base64

from audit import merkle, tree
from audit.models import AuditEvent, AuditSeal, EvidenceExport, SealTimestamp
from compliance.witnesses.models import Cosignature
from compliance.witnesses.services import witnessed_note

TIMESTAMPED_SEALS = 100


def _tiles(size: int, nodes: dict) -> list[dict]:
    return [{"first": (index << level) + 1, "last": (index + 1) << level, "hash": nodes[(level, index)].hex()}
            for level, index in merkle.perfect_subtrees(0, size)]


def section(export: EvidenceExport, seal: AuditSeal | None, start, end) -> dict | None:
    """Sets ``export.checkpoint_tree_size`` (saved when the bundle is done) and returns the section."""
    if seal is None or not seal.checkpoint:
        return None
    size = export.checkpoint_tree_size = seal.tree_size
    previous = (EvidenceExport.objects.filter(framework=export.framework, status=EvidenceExport.Status.DONE,
                                              checkpoint_tree_size__lte=size)
                .exclude(pk=export.pk).order_by("-checkpoint_tree_size", "-finished_at", "-pk").first())
    in_period = AuditEvent.objects.filter(created_at__gte=start, created_at__lt=end, sequence__lte=size)
    cited = sorted({s for s in (in_period.order_by("sequence").values_list("sequence", flat=True).first(),
                                in_period.order_by("-sequence").values_list("sequence", flat=True).first()) if s})
    ranges = {s: merkle.inclusion_ranges(s - 1, size) for s in cited}
    wanted = set(merkle.perfect_subtrees(0, size)) | merkle.needed_nodes(r for rs in ranges.values() for r in rs)
    if previous is not None:
        old = previous.checkpoint_tree_size
        wanted |= set(merkle.perfect_subtrees(0, old)) | merkle.needed_nodes(merkle.consistency_ranges(old, size))
    cosigned = Cosignature.objects.filter(tree_size__lte=size).order_by("-seal_number").first()
    witnessed = AuditSeal.objects.filter(number=cosigned.seal_number).first() if cosigned is not None else None
    if witnessed is not None:
        wanted |= (set(merkle.perfect_subtrees(0, witnessed.tree_size))
                   | merkle.needed_nodes(merkle.consistency_ranges(witnessed.tree_size, size)))
    nodes = tree.read_nodes(wanted)
    hashes = dict(AuditEvent.objects.filter(sequence__in=cited).values_list("sequence", "hash"))
    result = {
        "checkpoint": seal.checkpoint, "tree_size": size, "root_hash": seal.root_hash, "subtrees": _tiles(size, nodes),
        "inclusion": [{"sequence": s, "hash": hashes[s],
                       "proof": [merkle.range_hash(a, b, nodes).hex() for a, b in ranges[s]]} for s in cited],
    }
    if previous is not None:
        result["previous"] = {
            "export_id": previous.pk, "tree_size": old, "root_hash": merkle.range_hash(0, old, nodes).hex(),
            "subtrees": _tiles(old, nodes),
            "consistency_proof": [merkle.range_hash(a, b, nodes).hex() for a, b in merkle.consistency_ranges(old, size)],
        }
    result["timestamps"] = timestamps(size, previous.checkpoint_tree_size if previous is not None else None)
    if witnessed is not None:
        rows = list(Cosignature.objects.filter(seal_number=witnessed.number).select_related("witness")
                    .order_by("witness__name"))
        w = witnessed.tree_size
        result["witnessed"] = {
            "seal": witnessed.number, "tree_size": w, "root_hash": merkle.range_hash(0, w, nodes).hex(),
            "checkpoint": witnessed_note(witnessed, rows), "subtrees": _tiles(w, nodes),
            "consistency_proof": [merkle.range_hash(a, b, nodes).hex() for a, b in merkle.consistency_ranges(w, size)],
        }
        result["cosignatures"] = [{"witness": c.witness.name, "timestamp": c.timestamp, "line": c.line} for c in rows]
    return result


def timestamps(size: int, previous_size: int | None) -> list[dict]:
    sealed = AuditSeal.objects.exclude(checkpoint="").filter(tree_size__lte=size)
    numbers = set(sealed.order_by("-number").values_list("number", flat=True)[:TIMESTAMPED_SEALS])
    if previous_size is not None:
        numbers |= set(sealed.filter(tree_size__lte=previous_size).order_by("-number").values_list("number", flat=True)[:2])
    stamps = (SealTimestamp.objects.filter(seal__number__in=numbers).select_related("seal")
              .order_by("seal__number", "authority_name"))
    return [{"seal": t.seal.number, "tree_size": t.seal.tree_size, "checkpoint": t.seal.checkpoint,
             "authority": t.authority_name, "token": base64.b64encode(bytes(t.response)).decode("ascii")}
            for t in stamps]
