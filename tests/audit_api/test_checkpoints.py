"""Witnesses pull checkpoints (``audit/checkpoints/``) and post their C2SP cosignatures back
(``audit/cosignatures/``): a round trip with a witness key generated here, and every refusal, which
stores nothing."""
import time

import pytest

import audit
from audit import checkpoint, cosignature, signing
from audit.models import AuditEvent
from audit.seals import seal
from compliance import continuity
from compliance.witnesses.models import Cosignature
from tests.audit.sealtools import signing_key  # noqa: F401 (fixture)
from tests.witnesses.tools import new_witness, register

CHECKPOINTS = "/api/v1/audit/checkpoints/"
COSIGN = "/api/v1/audit/cosignatures/"


@pytest.fixture
def sealed(demo, signing_key):  # noqa: F811
    for n in range(5):
        audit.record("test.step", data={"n": n})
    return seal()


def test_a_witness_pulls_the_latest_checkpoint_cosigns_it_and_the_cosignature_is_shown(demo, api_as, client_as,
                                                                                        sealed):
    witness = new_witness()
    register(demo, witness)
    client = api_as(demo.auditor)
    latest = client.get(f"{CHECKPOINTS}latest/").json()
    assert (latest["seal"], latest["tree_size"], latest["checkpoint"], latest["cosignatures"]) == (
        sealed.number, sealed.tree_size, sealed.checkpoint, [])
    note = client.get(f"{CHECKPOINTS}latest/", HTTP_ACCEPT="text/plain")
    assert note["Content-Type"].startswith("text/plain") and note.content.decode() == sealed.checkpoint

    response = client.post(COSIGN, {"checkpoint": witness.cosign(note.content.decode())}, format="json")

    assert response.status_code == 201, response.json()
    [row] = Cosignature.objects.all()
    assert (row.witness.name, row.seal_number, row.tree_size) == (witness.name, sealed.number, sealed.tree_size)
    assert response.json()[0]["line"] == row.line
    event = AuditEvent.objects.get(action="checkpoint.cosigned")
    assert event.actor == demo.auditor and event.data["seal"] == sealed.number
    # Shown in the API, as a note with two signatures and as JSON, and checkable offline.
    witnessed = client.get(f"{CHECKPOINTS}{sealed.tree_size}/").json()
    assert witnessed["checkpoint"] == sealed.checkpoint + row.line + "\n"
    assert [c["witness"] for c in witnessed["cosignatures"]] == [witness.name]
    cp, _, found = continuity.check_witnessed(witnessed, signing.public_key(), continuity.witness_keys([witness.vkey]))
    assert cp.tree_size == sealed.tree_size and set(found) == {witness.name}
    listed = client.get(CHECKPOINTS).json()["results"]
    assert [c["seal"] for c in listed] == [sealed.number] and listed[0]["cosignatures"][0]["line"] == row.line
    # Shown in the admin: the seal's page and the witness's.
    admin = client_as(demo.admin)
    assert witness.name in admin.get(f"/admin/audit/auditseal/{sealed.pk}/change/").content.decode()
    assert str(sealed.tree_size) in admin.get(f"/admin/compliance/witness/{row.witness.pk}/change/").content.decode()


def test_a_raw_key_registers_too(demo, api_as, sealed):
    witness = new_witness()
    register(demo, witness, raw=True)
    response = api_as(demo.auditor).post(COSIGN, {"checkpoint": witness.cosign(sealed.checkpoint)}, format="json")
    assert response.status_code == 201


def _refused(client, note, status, code=None):
    before = (Cosignature.objects.count(), AuditEvent.objects.filter(action="checkpoint.cosigned").count())
    response = client.post(COSIGN, {"checkpoint": note}, format="json")
    assert response.status_code == status, response.json()
    if code is not None:
        assert code in [r["code"] for r in response.json()["reasons"]]
    assert (Cosignature.objects.count(),
            AuditEvent.objects.filter(action="checkpoint.cosigned").count()) == before, "nothing stored"
    return response.json()


def test_forged_unknown_replayed_and_never_issued_cosignatures_are_refused(demo, api_as, sealed):
    witness, stranger = new_witness(), new_witness("stranger.example/w")
    register(demo, witness)
    client = api_as(demo.auditor)
    cp, _ = checkpoint.parse(sealed.checkpoint)

    # Unknown witness (no such name registered).
    _refused(client, stranger.cosign(sealed.checkpoint), 403, "unknown_witness")
    # Forged: the registered name, another key (its key ID is not the registered key's).
    impostor = new_witness(witness.name)
    _refused(client, impostor.cosign(sealed.checkpoint), 403, "bad_signature")
    # Forged: the witness's key ID, a signature over something else.
    other = checkpoint.Checkpoint(cp.origin, cp.tree_size, b"\x07" * 32, cp.extensions)
    line = cosignature.sign_line(other, witness.name, witness.private_key, int(time.time()))
    _refused(client, f"{sealed.checkpoint}{line}\n", 403, "bad_signature")
    # A checkpoint the server never issued, however well cosigned.
    never = checkpoint.sign(other, signing.public_key(), signing.sign_raw)
    _refused(client, witness.cosign(never), 403, "unknown_checkpoint")
    # No cosignature at all, and not a note.
    _refused(client, sealed.checkpoint, 400)
    assert "checkpoint" in _refused(client, "hello", 400)
    # Dated in the future.
    _refused(client, witness.cosign(sealed.checkpoint, int(time.time()) + 3600), 400)
    # One good and one unknown line: refused as a whole.
    _refused(client, stranger.cosign(witness.cosign(sealed.checkpoint)), 403, "unknown_witness")

    first = witness.cosign(sealed.checkpoint, int(time.time()) - 60)
    assert client.post(COSIGN, {"checkpoint": first}, format="json").status_code == 201
    # Replayed: the same cosignature again, or the same witness again on the same seal.
    _refused(client, first, 409, "already_cosigned")
    _refused(client, witness.cosign(sealed.checkpoint), 409, "already_cosigned")
    # Replayed onto a later checkpoint is impossible (the signature covers the note); an older
    # timestamp on a new seal is a replay or a clock gone back.
    audit.record("test.step", data={"n": 99})
    later = seal()
    _refused(client, witness.cosign(later.checkpoint, int(time.time()) - 120), 409, "stale_timestamp")
    assert client.post(COSIGN, {"checkpoint": witness.cosign(later.checkpoint)}, format="json").status_code == 201
    # A witness switched off is unknown.
    from tests.factories import set_control

    switched_off = set_control(Cosignature.objects.first().witness, by=demo.admin, second=demo.sec, is_active=False)
    assert not switched_off.is_active
    audit.record("test.step", data={"n": 100})
    third = seal()
    _refused(client, witness.cosign(third.checkpoint), 403, "unknown_witness")


def test_an_unknown_field_beside_a_good_cosignature_is_refused_and_nothing_is_stored(demo, api_as, sealed):
    """The unknown-field rule (tests/api/test_unknown_fields.py) for the one write whose matrix body
    cannot pass: a cosignature needs a note a seal signed and a registered witness's signature."""
    witness = new_witness()
    register(demo, witness)
    client = api_as(demo.auditor)
    note = witness.cosign(sealed.checkpoint)
    events = AuditEvent.objects.count()
    response = client.post(COSIGN, {"checkpoint": note, "unexpected_field": "ignored?"}, format="json")
    assert response.status_code == 400 and response.json() == {"unexpected_field": ["Unknown field."]}
    assert not Cosignature.objects.exists() and AuditEvent.objects.count() == events
    assert client.post(COSIGN, {"checkpoint": note}, format="json").status_code == 201


def test_unknown_fields_and_unknown_sizes(demo, api_as, sealed):
    client = api_as(demo.auditor)
    assert client.post(COSIGN, {"checkpoint": sealed.checkpoint, "extra": 1}, format="json").status_code == 400
    assert client.get(f"{CHECKPOINTS}{sealed.tree_size + 1}/").status_code == 404
    assert client.get(f"{CHECKPOINTS}99999999999999999999/").status_code == 404
    # Errors answer JSON whatever the client accepts; a list is JSON only.
    refused = api_as(demo.dev).get(f"{CHECKPOINTS}latest/", HTTP_ACCEPT="text/plain")
    assert refused.status_code == 403 and refused["Content-Type"] == "application/json"
    assert refused.json()["reasons"][0]["code"] == "missing_duty"
    assert client.get(f"{CHECKPOINTS}{sealed.tree_size + 1}/", HTTP_ACCEPT="text/plain")["Content-Type"] == (
        "application/json")
    assert client.get(CHECKPOINTS, HTTP_ACCEPT="text/plain").status_code == 406
