"""Bundles carry the timestamp tokens of their checkpoints (``transparency.timestamps``) and
``bundle_verify --tsa-certificate`` checks each one offline against the checkpoint it names. The
rewrite drill, once more: an operator holding the signing key rewrites event #k, recomputes the
chain and the tree and re-signs every seal; the authority's token still covers the checkpoint as it
was, so the verifier given the authority's certificate refuses the forged bundle and names #k's range."""
import base64
import json
import re

import pytest
from django.conf import settings

import audit
from audit import seals, timestamps
from audit.models import AuditEvent, AuditSeal, SealTimestamp
from compliance import bundle_verify, timestamp_check
from tests.evidence.conftest import build_export
from tests.evidence.test_continuity import forge_history, path_of, pem
from tests.timestamps import tsa as tsa_server

pytestmark = pytest.mark.django_db


def stamped_bundle(demo, period, steps):
    for n in steps:
        audit.record("test.step", at=period.middle, data={"n": n})
    seal = seals.seal()
    timestamps.stamp_seal(seal.number)
    return build_export(demo, "sox", period)


def write(tmp_path, name, text) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_bundle_carries_its_tokens_and_they_check_offline(demo, period, bundle_of, authority, tsa, tmp_path, capsys):
    export = stamped_bundle(demo, period, range(4))
    [entry] = bundle_of(export).manifest["transparency"]["timestamps"]
    seal = AuditSeal.objects.get()
    assert (entry["seal"], entry["tree_size"], entry["checkpoint"], entry["authority"]) == (
        seal.number, seal.tree_size, seal.checkpoint, "Local TSA")
    assert base64.b64decode(entry["token"]) == bytes(SealTimestamp.objects.get().response)

    result = bundle_verify.verify(path_of(export), pem(), tsa_certificate=tsa.certificate.encode())
    assert [(t["tree_size"], t["authority"]) for t in result.timestamps] == [(seal.tree_size, "Local TSA")]
    key = write(tmp_path, "server.pub", pem().decode())
    assert bundle_verify.main([str(path_of(export)), "--public-key", key,
                               "--tsa-certificate", write(tmp_path, "tsa.pem", tsa.certificate)]) == 0
    assert f"Local TSA timestamped the checkpoint of tree size {seal.tree_size} at" in capsys.readouterr().out
    # Another authority's certificate: the tokens are refused, exit 1.
    other = write(tmp_path, "other.pem", tsa_server.make_authority("Elsewhere TSA")[0])
    assert bundle_verify.main([str(path_of(export)), "--public-key", key, "--tsa-certificate", other]) == 1
    assert "does not verify against the authority's certificate" in capsys.readouterr().err


def test_a_token_listed_with_another_checkpoint_is_refused(demo, period, bundle_of, authority, tsa):
    stamped_bundle(demo, period, range(2))
    export = stamped_bundle(demo, period, range(2, 5))
    section = bundle_of(export).manifest["transparency"]
    first, second = section["timestamps"]
    timestamp_check.check_timestamps(section, _public_key(), tsa.certificate)
    swapped = json.loads(json.dumps(section))
    swapped["timestamps"][1]["token"] = first["token"]  # the first seal's token, listed with the second checkpoint
    with pytest.raises(timestamp_check.TimestampError, match=(
            rf"the checkpoint of tree size {second['tree_size']} is not the one Local TSA timestamped at .*"
            r"the token is for another digest")):
        timestamp_check.check_timestamps(swapped, _public_key(), tsa.certificate)
    for broken, message in [({**section, "timestamps": []}, "no timestamp token"),
                            ({k: v for k, v in section.items() if k != "timestamps"}, "no timestamps section"),
                            ({**section, "timestamps": [{**first, "token": "%%"}]}, "malformed timestamp entry"),
                            ({**section, "timestamps": [{**first, "checkpoint": second["checkpoint"] + "x"}]},
                             "checkpoint")]:
        with pytest.raises(timestamp_check.TimestampError, match=message):
            timestamp_check.check_timestamps(broken, _public_key(), tsa.certificate)


def test_the_rewrite_drill_is_caught_by_the_timestamp_token(demo, period, authority, tsa, tmp_path, capsys):
    stamped_bundle(demo, period, range(3))
    earlier = stamped_bundle(demo, period, range(3, 9))
    first_seal, second_seal = AuditSeal.objects.order_by("number")
    k = AuditEvent.objects.get(data__n=4).sequence
    assert first_seal.tree_size < k <= second_seal.tree_size
    audit.record("test.step", at=period.middle, data={"n": 9})

    forge_history(k, {"n": 444})  # every check inside the server is fooled (tests/evidence/test_continuity.py)
    seals.seal()
    timestamps.stamp_pending()  # the new seal is stamped; the re-signed ones keep the tokens they had
    later = build_export(demo, "sox", period)
    bundle_verify.verify(path_of(later), pem())  # consistent with itself, and without --previous

    with pytest.raises(bundle_verify.BundleError, match="the history was rewritten after it was stamped") as caught:
        bundle_verify.verify(path_of(later), pem(), tsa_certificate=tsa.certificate.encode())
    first_event, last_event = map(int, re.search(r"in events #(\d+)\.\.#(\d+)", str(caught.value)).groups())
    assert (first_event, last_event) == (first_seal.tree_size + 1, second_seal.tree_size)
    assert first_event <= k <= last_event
    key, certificate = write(tmp_path, "server.pub", pem().decode()), write(tmp_path, "tsa.pem", tsa.certificate)
    assert bundle_verify.main([str(path_of(later)), "--public-key", key, "--tsa-certificate", certificate]) == 1
    assert f"in events #{first_event}..#{last_event}" in capsys.readouterr().err
    # The bundle the auditor kept from before the rewrite still checks, tokens included.
    bundle_verify.verify(path_of(earlier), pem(), tsa_certificate=tsa.certificate.encode())
    assert settings.AUDIT_CHECKPOINT_ORIGIN in AuditSeal.objects.get(number=second_seal.number).checkpoint


def _public_key():
    from audit import signing

    return signing.public_key()
