"""Witnessed checkpoints (issue 20): bundles carry the latest checkpoint witnesses cosigned, and the
rewrite drill given a witnessed checkpoint an auditor kept. An operator holding the signing key
rewrites event #k, recomputes the chain and the tree and re-signs every seal; every check inside the
server passes, but the verifiers, given the checkpoint the witnesses cosigned before, refuse the log
(``audit_verify --witnessed``) and the later bundle (``bundle_verify --witnessed``), naming a range of
events that holds #k."""
import json
import re
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

import audit
from audit import seals
from audit.models import AuditEvent, AuditSeal
from compliance import bundle_verify
from compliance.witnesses.models import Cosignature
from compliance.witnesses.services import cosign
from tests.evidence.conftest import build_export
from tests.evidence.test_continuity import forge_history, path_of, pem
from tests.witnesses.tools import new_witness, register

pytestmark = pytest.mark.django_db


def cosigned_log(demo, period, witness):
    """Two seals, the second cosigned by ``witness``; returns the witnessed checkpoint an auditor
    keeps (the API's JSON answer) and the first event of the second seal."""
    register(demo, witness)
    for n in range(3):
        audit.record("test.step", at=period.middle, data={"n": n})
    seals.seal()
    for n in range(3, 11):
        audit.record("test.step", at=period.middle, data={"n": n})
    second = seals.seal()
    cosign(actor=demo.auditor, note=witness.cosign(second.checkpoint))
    return second


def kept(client, seal) -> dict:
    return client.get(f"/api/v1/audit/checkpoints/{seal.tree_size}/").json()


def range_of(message: str) -> tuple[int, int]:
    """The range a refusal names as holding the rewrite (the last one it names)."""
    return tuple(map(int, re.findall(r"(?:diverge in|would be in) events #(\d+)\.\.#(\d+)", message)[-1]))


def test_a_bundle_carries_the_latest_witnessed_checkpoint_and_agrees_with_it(demo, period, api_as, tmp_path):
    witness = new_witness()
    second = cosigned_log(demo, period, witness)
    witnessed = kept(api_as(demo.auditor), second)
    audit.record("test.step", at=period.middle, data={"n": 11})
    seals.seal()
    export = build_export(demo, "sox", period)
    manifest = bundle_verify.verify(path_of(export), pem()).manifest["transparency"]
    assert manifest["witnessed"]["tree_size"] == second.tree_size
    assert manifest["witnessed"]["checkpoint"] == witnessed["checkpoint"]
    assert [c["witness"] for c in manifest["cosignatures"]] == [witness.name]
    bundle_verify.verify(path_of(export), pem(), witnessed=witnessed, witness_keys=(witness.vkey,))
    # The witnessed checkpoint is checked with the auditor's keys, not the server's list.
    with pytest.raises(bundle_verify.BundleError, match="no cosignature by any of the witnesses"):
        bundle_verify.verify(path_of(export), pem(), witnessed=witnessed, witness_keys=(new_witness(witness.name).vkey,))
    out = StringIO()
    call_command("audit_verify", "--witnessed", _save(tmp_path, witnessed), "--witness-key", witness.vkey, stdout=out)
    assert f"Witnessed checkpoint agrees: tree of {second.tree_size} events" in out.getvalue()


def _save(tmp_path, witnessed) -> str:
    path = tmp_path / "witnessed.json"
    path.write_text(json.dumps(witnessed))
    return str(path)


@pytest.mark.parametrize("cosignatures_removed", [False, True], ids=["cosignatures-kept", "cosignatures-removed"])
def test_the_rewrite_drill_is_caught_by_the_witnessed_checkpoint(demo, period, api_as, tmp_path, capsys,
                                                                  cosignatures_removed):
    witness = new_witness()
    second = cosigned_log(demo, period, witness)
    witnessed = kept(api_as(demo.auditor), second)
    k = AuditEvent.objects.get(data__n=7).sequence
    audit.record("test.step", at=period.middle, data={"n": 11})

    forge_history(k, {"n": 777})
    if cosignatures_removed:  # the careful operator also removes what witnesses sent
        Cosignature.objects.all().delete()
    out = StringIO()
    call_command("audit_verify", stdout=out)  # every check inside the server is fooled
    assert "Audit seals intact" in out.getvalue() and "Merkle tree intact" in out.getvalue()
    assert AuditSeal.objects.get(number=second.number).checkpoint != second.checkpoint  # re-signed

    # The log itself, given the witnessed checkpoint: the tree of its size has another root.
    with pytest.raises(CommandError, match="contradicts the witnessed checkpoint") as caught:
        call_command("audit_verify", "--witnessed", _save(tmp_path, witnessed), "--witness-key", witness.vkey)
    first, last = range_of(str(caught.value))
    assert first <= k <= last <= second.tree_size

    # A later bundle, consistent with itself, refused against the witnessed checkpoint.
    seals.seal()
    later = build_export(demo, "sox", period)
    bundle_verify.verify(path_of(later), pem())
    with pytest.raises(bundle_verify.BundleError, match="contradicts the witnessed checkpoint") as caught:
        bundle_verify.verify(path_of(later), pem(), witnessed=witnessed, witness_keys=(witness.vkey,))
    first, last = range_of(str(caught.value))
    assert first <= k <= last <= second.tree_size, (str(caught.value), k)
    public = settings.SIGNING_KEY_FILE.with_suffix(".pub")
    public.write_bytes(pem())
    assert bundle_verify.main([str(path_of(later)), "--public-key", str(public), "--witnessed",
                               _save(tmp_path, witnessed), "--witness-key", witness.vkey]) == 1
    assert f"events #{first}..#{last}" in capsys.readouterr().err


def test_a_forged_witnessed_checkpoint_is_refused(demo, period, api_as):
    witness = new_witness()
    second = cosigned_log(demo, period, witness)
    witnessed = kept(api_as(demo.auditor), second)
    export = build_export(demo, "sox", period)
    tampered = {**witnessed, "subtrees": [{**witnessed["subtrees"][0], "hash": "00" * 32}, *witnessed["subtrees"][1:]]}
    with pytest.raises(bundle_verify.BundleError, match="do not fold into its root"):
        bundle_verify.verify(path_of(export), pem(), witnessed=tampered, witness_keys=(witness.vkey,))
    text, lines = witnessed["checkpoint"].split("\n\n")
    log_line, cosignature_line = lines.splitlines()
    unsigned = {**witnessed, "checkpoint": f"{text}\n\n{cosignature_line}\n"}  # the log's signature removed
    with pytest.raises(bundle_verify.BundleError, match="the log's signature: no signature by this key"):
        bundle_verify.verify(path_of(export), pem(), witnessed=unsigned, witness_keys=(witness.vkey,))
    assert log_line.startswith(f"\u2014 {settings.AUDIT_CHECKPOINT_ORIGIN} ")
