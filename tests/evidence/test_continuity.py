"""Bundles carry their checkpoint and prove they extend the previous bundle of their framework
(compliance/evidence/transparency.py, checked offline by compliance.continuity through
bundle_verify). The rewrite drill: an operator holding the signing key rewrites an event, recomputes
the chain, the tree and every seal, so that every check inside the server passes; the earlier bundle
an auditor kept still catches it and names the events' range."""
import re
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

import audit
from audit import checkpoint, merkle, seals, signing, tree
from audit.models import AuditEvent, AuditSeal
from compliance import bundle_verify
from compliance.evidence import services as evidence_services
from tests.audit.rawsql import drop_triggers, sql
from tests.audit.sealtools import drop_seal_triggers, rewrite_event
from tests.evidence.conftest import build_export

pytestmark = pytest.mark.django_db


def pem() -> bytes:
    return signing.public_key_pem().encode()


def path_of(export):
    return evidence_services.bundle_path(export)


def sealed_bundle(demo, period, steps):
    for n in steps:
        audit.record("test.step", at=period.middle, data={"n": n})
    seals.seal()
    return build_export(demo, "sox", period)


def forge_history(sequence: int, data: dict) -> None:
    """What an operator with the database and the signing key can do: rewrite event #sequence,
    recompute every later hash, rebuild the Merkle tree and re-sign every seal (and rewrite each
    seal's announcement to match), leaving nothing the server's own checks can see."""
    drop_triggers()
    drop_seal_triggers()
    rewrite_event(sequence, data)
    prev_signature = ""
    for seal in AuditSeal.objects.order_by("number"):
        tree.rebuild()
        head_hash = AuditEvent.objects.get(sequence=seal.sequence).hash
        root = tree.root(seal.tree_size)
        note = checkpoint.sign(
            checkpoint.Checkpoint(settings.AUDIT_CHECKPOINT_ORIGIN, seal.tree_size, root,
                                  (f"time {seal.created_at.isoformat()}",)),
            signing.public_key(), signing.sign_raw,
        )
        fields = {"number": seal.number, "created_at": seal.created_at, "sequence": seal.sequence,
                  "head_hash": head_hash, "prev_signature": prev_signature, "key_fingerprint": seal.key_fingerprint}
        signature = signing.sign(seals.message(**fields))
        sql("UPDATE audit_auditseal SET head_hash = %s, prev_signature = %s, signature = %s, root_hash = %s, "
            "checkpoint = %s WHERE number = %s", [head_hash, prev_signature, signature, root.hex(), note, seal.number])
        announcement = AuditEvent.objects.get(sequence=seal.sequence + 1)
        rewrite_event(seal.sequence + 1, {**announcement.data, "head_hash": head_hash, "signature": signature,
                                          "root_hash": root.hex()})
        prev_signature = signature
    tree.rebuild()


def test_a_bundle_carries_its_checkpoint_and_inclusion_proofs(demo, period, bundle_of):
    export = sealed_bundle(demo, period, range(4))
    section = bundle_of(export).manifest["transparency"]
    seal = AuditSeal.objects.get()
    assert (section["checkpoint"], section["tree_size"], section["root_hash"]) == (
        seal.checkpoint, seal.tree_size, seal.root_hash)
    assert export.checkpoint_tree_size == seal.tree_size and "previous" not in section
    in_period = AuditEvent.objects.filter(data__n__isnull=False).order_by("sequence")
    assert [p["sequence"] for p in section["inclusion"]] == [in_period.first().sequence, in_period.last().sequence]
    bundle_verify.verify(path_of(export), pem())


def test_a_later_bundle_proves_it_extends_the_previous_one(demo, period, bundle_of):
    first = sealed_bundle(demo, period, range(3))
    second = sealed_bundle(demo, period, range(3, 9))
    previous = bundle_of(second).manifest["transparency"]["previous"]
    assert (previous["export_id"], previous["tree_size"]) == (first.pk, first.checkpoint_tree_size)
    bundle_verify.verify(path_of(second), pem(), previous=path_of(first))
    assert bundle_verify.main([str(path_of(second)), "--public-key", str(settings.SIGNING_KEY_FILE.with_suffix(".pub")),
                               "--previous", str(path_of(first))]) == 2  # no such key file yet
    public = settings.SIGNING_KEY_FILE.with_suffix(".pub")
    public.write_bytes(pem())
    assert bundle_verify.main([str(path_of(second)), "--public-key", str(public), "--previous", str(path_of(first))]) == 0


def test_the_rewrite_drill_is_caught_by_the_earlier_bundle(demo, period, capsys):
    first = sealed_bundle(demo, period, range(3))
    earlier = sealed_bundle(demo, period, range(3, 9))
    k = AuditEvent.objects.get(data__n=4).sequence
    audit.record("test.step", at=period.middle, data={"n": 9})

    forge_history(k, {"n": 444})
    out = StringIO()
    call_command("audit_verify", stdout=out)  # every check inside the server is fooled
    assert "Audit seals intact" in out.getvalue() and "Merkle tree intact" in out.getvalue()
    seals.seal()
    later = build_export(demo, "sox", period)
    bundle_verify.verify(path_of(later), pem())  # the forged bundle is consistent with itself

    with pytest.raises(bundle_verify.BundleError, match="does not extend the previous bundle") as caught:
        bundle_verify.verify(path_of(later), pem(), previous=path_of(earlier))
    first_event, last_event = map(int, re.search(r"diverge in events #(\d+)\.\.#(\d+)", str(caught.value)).groups())
    assert first_event <= k <= last_event and last_event <= earlier.checkpoint_tree_size
    with pytest.raises(bundle_verify.BundleError, match="proves continuity from tree size"):
        bundle_verify.verify(path_of(later), pem(), previous=path_of(first))
    public = settings.SIGNING_KEY_FILE.with_suffix(".pub")
    public.write_bytes(pem())
    assert bundle_verify.main([str(path_of(later)), "--public-key", str(public), "--previous", str(path_of(earlier))]) == 1
    assert f"diverge in events #{first_event}..#{last_event}" in capsys.readouterr().err


def test_a_tampered_transparency_section_fails_the_bundle(demo, period, bundle_of):
    from compliance import continuity

    first = sealed_bundle(demo, period, range(3))
    second = sealed_bundle(demo, period, range(3, 9))
    section = bundle_of(second).manifest["transparency"]
    continuity.check_bundle(section, signing.public_key())
    for path, value in [(("inclusion", 0, "hash"), "ab" * 32), (("previous", "consistency_proof", 0), "00" * 32),
                        (("subtrees", 0, "hash"), "00" * 32), (("root_hash",), "00" * 32)]:
        broken = _copy(section)
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(continuity.ContinuityError):
            continuity.check_bundle(broken, signing.public_key())
    assert merkle.naive_root([merkle.event_leaf(h) for h in AuditEvent.objects.filter(
        sequence__lte=first.checkpoint_tree_size).order_by("sequence").values_list("hash", flat=True)]).hex() == (
        section["previous"]["root_hash"])


def _copy(value):
    import json

    return json.loads(json.dumps(value))
