"""Seals sign the chain head (RULES.md L2): an attacker who rewrites events and recomputes every
hash, deletes a seal, or forges one without the private key is caught by ``verify_seals`` and by
``manage.py audit_verify``.

Tampering happens the way someone with database access would do it (triggers dropped, raw SQL),
inside a savepoint that is rolled back (DDL included, on SQLite and PostgreSQL)."""
import base64
import json
from datetime import timedelta, timezone as dt_timezone
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management import CommandError, ManagementUtility, call_command
from django.db import DatabaseError, transaction
from django.urls import reverse
from django.utils import timezone

import audit
from audit import chain_watch, keys, seals, signing
from audit.chain import verify
from audit.models import Alert, AppendOnlyError, AuditEvent, AuditSeal, ChainHead
from audit.tasks import seal_chain
from config.schedule import SCHEDULE
from tests.audit.rawsql import drop_triggers, rolled_back, set_event_data, sql
from tests.audit.sealtools import (  # noqa: F401 (fixtures)
    SEAL_TRIGGERS,
    drop_seal_triggers,
    installed_seal_triggers,
    other_key,
    pem_of,
    rewrite_event,
    sealed,
    signing_key,
)

pytestmark = pytest.mark.django_db


def audit_verify(*args) -> str:
    out = StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


def forge(private_key, *, number, sequence, head_hash, prev_signature, fingerprint=None) -> AuditSeal:
    """Insert a seal signed with ``private_key`` (inserts are not refused: appending is allowed)."""
    fields = {
        "number": number, "created_at": timezone.now(), "sequence": sequence, "head_hash": head_hash,
        "prev_signature": prev_signature,
        "key_fingerprint": fingerprint or keys.fingerprint(private_key.public_key()),
    }
    signature = base64.b64encode(private_key.sign(seals.message(**fields))).decode()
    return AuditSeal.objects.create(**fields, signature=signature)


# Sealing ----------------------------------------------------------------------------------------


def test_a_seal_signs_the_chain_head_in_the_documented_format(signing_key):
    for n in range(3):
        audit.record("test.step", data={"n": n})
    head = AuditEvent.objects.get(sequence=3)

    first = seals.seal()

    assert (first.number, first.sequence, first.head_hash, first.prev_signature) == (1, 3, head.hash, "")
    assert first.key_fingerprint == signing.fingerprint()
    # The module docstring's recipe, rebuilt by hand, is what was signed.
    documented = json.dumps(
        {"number": 1, "created_at": first.created_at.astimezone(dt_timezone.utc).isoformat(timespec="microseconds"),
         "sequence": 3, "head_hash": head.hash, "prev_signature": "", "key_fingerprint": signing.fingerprint()},
        sort_keys=True, separators=(",", ":"),
    ).encode()
    stored = AuditSeal.objects.get()
    signing.public_key().verify(base64.b64decode(stored.signature), documented)
    assert keys.is_valid(signing.public_key(), stored.signature, seals.seal_message(stored))


def test_the_seal_is_announced_in_the_chain(signing_key):
    audit.record("test.step")
    first = seals.seal()

    announcement = AuditEvent.objects.get(sequence=2)
    assert announcement.action == "audit.sealed"
    assert announcement.data["number"] == 1 and announcement.data["signature"] == first.signature
    assert announcement.target_type == "audit.auditseal" and announcement.target_id == str(first.pk)
    assert verify() == (2, None)


def test_each_seal_covers_the_previous_seal_and_the_new_head(sealed):
    first, second, third = sealed

    assert [s.number for s in sealed] == [1, 2, 3]
    assert [s.sequence for s in sealed] == [3, 6, 9]
    assert second.prev_signature == first.signature and third.prev_signature == second.signature
    assert third.head_hash == AuditEvent.objects.get(sequence=9).hash
    assert ChainHead.objects.get().sequence == 10  # the third seal's announcement


def test_nothing_to_seal_makes_no_seal(signing_key):
    assert seals.seal() is None  # an empty log
    audit.record("test.step")
    assert seals.seal().number == 1
    assert seals.seal() is None  # only the first seal's own announcement since
    assert seals.seal() is None
    assert AuditSeal.objects.count() == 1 and ChainHead.objects.get().sequence == 2

    audit.record("test.step")
    assert seals.seal().number == 2


def test_sealing_refuses_a_chain_that_does_not_follow_from_the_last_seal(sealed):
    audit.record("test.step", data={"n": 11})
    drop_triggers()  # rolled back with the test's transaction
    set_event_data(11, '{"n": 1100}')

    with pytest.raises(seals.SealRefused, match=r"event #11 .*content does not match its hash"):
        seals.seal()
    assert AuditSeal.objects.count() == 3


def test_the_hourly_task_seals_and_is_scheduled(signing_key):
    audit.record("test.step")

    assert seal_chain.delay().get() == 1
    assert seal_chain.delay().get() is None
    assert SCHEDULE["audit: seal the chain head"] == {"task": "audit.tasks.seal_chain", "every": 3600}


def test_the_task_raises_the_critical_alert_instead_of_sealing_a_tampered_chain(sealed):
    audit.record("test.step", data={"n": 11})
    drop_triggers()
    set_event_data(11, "{}")

    assert seal_chain() is None
    assert AuditSeal.objects.count() == 3
    alert = Alert.objects.get(kind="audit_chain_broken")
    assert alert.severity == "critical" and alert.details["sequence"] == 11


# Verifying --------------------------------------------------------------------------------------


def test_an_intact_sealed_log_verifies(sealed):
    assert seals.verify_seals() == (3, None)
    out = audit_verify()
    assert "Audit chain intact: 10 events verified." in out
    assert "Audit seals intact: 3 seals verified." in out


def test_verify_reads_seals_in_batches(sealed):
    assert seals.verify_seals(batch_size=2) == (3, None)


def test_an_unsealed_log_needs_no_key(settings, tmp_path):
    """Verifying a log that was never sealed does not create or need a signing key."""
    settings.SIGNING_KEY_FILE = tmp_path / "absent.pem"
    settings.SIGNING_KEY_AUTOGENERATE = False
    audit.record("test.step")

    assert seals.verify_seals() == (0, None)
    assert "Audit seals intact: 0 seals verified." in audit_verify()
    assert not settings.SIGNING_KEY_FILE.exists()


def test_an_auditor_checks_the_seals_with_the_published_public_key(sealed, tmp_path):
    published = tmp_path / "countersign.pub"
    published.write_text(signing.public_key_pem())
    assert "Audit seals intact: 3 seals verified." in audit_verify("--public-key", str(published))

    stranger = tmp_path / "stranger.pub"
    stranger.write_bytes(pem_of(other_key()))
    with pytest.raises(CommandError, match=r"seal 1: signed by another key"):
        audit_verify("--public-key", str(stranger))


def test_a_rewritten_event_with_every_hash_recomputed_is_caught_by_the_seal(sealed):
    """(a) The chain alone is fooled; the sealed head hash is not."""
    with rolled_back():
        drop_triggers()
        rewrite_event(2, {"n": 222})

        assert verify() == (10, None)  # every hash was recomputed
        checked, broken = seals.verify_seals()
        assert checked == 0
        assert str(broken) == "seal 1: head_hash does not match the hash of event #3"
        with pytest.raises(CommandError, match=r"Audit seals broken at seal 1: head_hash does not match .*#3"):
            audit_verify()

    assert seals.verify_seals() == (3, None)


def test_a_rewrite_after_the_last_seal_but_one_is_caught_by_the_last_seal(sealed):
    with rolled_back():
        drop_triggers()
        rewrite_event(8, {"n": 888})

        checked, broken = seals.verify_seals()
        assert checked == 2
        assert broken.seal == 3 and "head_hash does not match the hash of event #9" in broken.problem


def test_a_deleted_middle_seal_is_missing(sealed, vendor):
    """(b) The seal after it still says which signature came before."""
    with rolled_back():
        drop_seal_triggers()
        sql("DELETE FROM audit_auditseal WHERE number = 2")

        checked, broken = seals.verify_seals()
        assert checked == 1
        assert str(broken) == "seal 2: missing; next present is seal 3"
        with pytest.raises(CommandError, match=r"Audit seals broken at seal 2: missing"):
            audit_verify()

    assert installed_seal_triggers() == set(SEAL_TRIGGERS[vendor])
    assert AuditSeal.objects.count() == 3


def test_a_deleted_latest_seal_is_caught_by_its_announcement(sealed):
    """(b) No seal comes after the latest one, but the chain recorded that it was taken."""
    with rolled_back():
        drop_seal_triggers()
        sql("DELETE FROM audit_auditseal WHERE number = 3")

        checked, broken = seals.verify_seals()
        assert checked == 2
        assert str(broken) == "seal 3: missing; event #10 announced it"
        assert broken.sequence == 10


def test_a_log_cut_back_behind_the_latest_announcement_is_caught_and_not_sealed_again(sealed):
    """Removing the latest seal's announcement (and moving the head back) fools the chain alone."""
    with rolled_back():
        drop_triggers()
        sql("DELETE FROM audit_auditevent WHERE sequence = 10")
        ChainHead.objects.filter(pk=1).update(sequence=9, hash=AuditEvent.objects.get(sequence=9).hash)
        assert verify() == (9, None)

        checked, broken = seals.verify_seals()
        assert checked == 2
        assert str(broken) == "seal 3: its announcement, event #10, is missing"
        audit.record("test.step")
        with pytest.raises(seals.SealRefused, match="the announcement of seal 3 is missing"):
            seals.seal()


def test_a_seal_signed_with_another_key_says_so(sealed):
    """(c) A forger without the server's key signs with their own."""
    forger = other_key()
    head = AuditEvent.objects.get(sequence=10)
    forged = forge(forger, number=4, sequence=10, head_hash=head.hash, prev_signature=sealed[2].signature)

    checked, broken = seals.verify_seals()
    assert checked == 3
    assert broken.seal == 4
    assert broken.problem == (
        f"signed by another key (fingerprint {forged.key_fingerprint}, expected {signing.fingerprint()})"
    )


def test_a_seal_claiming_the_server_fingerprint_without_its_key_does_not_verify(sealed):
    """(c) ... or copies the server's fingerprint into the seal."""
    head = AuditEvent.objects.get(sequence=10)
    forge(other_key(), number=4, sequence=10, head_hash=head.hash, prev_signature=sealed[2].signature,
          fingerprint=signing.fingerprint())

    _, broken = seals.verify_seals()
    assert str(broken) == "seal 4: signature does not verify"


def test_a_changed_seal_does_not_verify(sealed):
    with rolled_back():
        drop_seal_triggers()
        sql("UPDATE audit_auditseal SET sequence = 8 WHERE number = 3")

        _, broken = seals.verify_seals()
        assert str(broken) == "seal 3: signature does not verify"


def test_a_seal_pointing_at_a_wrong_head_is_caught(sealed):
    """(d) Even with a valid signature, the sealed hash must be the event's."""
    wrong = AuditEvent.objects.get(sequence=9).hash
    forge(signing.private_key(), number=4, sequence=10, head_hash=wrong, prev_signature=sealed[2].signature)

    _, broken = seals.verify_seals()
    assert str(broken) == "seal 4: head_hash does not match the hash of event #10"


def test_a_seal_beyond_the_log_is_caught(sealed):
    forge(signing.private_key(), number=4, sequence=99, head_hash="f" * 64, prev_signature=sealed[2].signature)

    _, broken = seals.verify_seals()
    assert str(broken) == "seal 4: sealed event #99 is missing"


def test_a_seal_out_of_the_chain_of_signatures_is_caught(sealed):
    head = AuditEvent.objects.get(sequence=10)
    forge(signing.private_key(), number=4, sequence=10, head_hash=head.hash, prev_signature=sealed[1].signature)

    _, broken = seals.verify_seals()
    assert str(broken) == "seal 4: prev_signature is not the previous seal's signature"


def test_an_announcement_naming_another_signature_is_caught(sealed):
    audit.record("audit.sealed", data={"number": 2, "signature": sealed[0].signature})

    _, broken = seals.verify_seals()
    assert broken.seal == 2 and "announced seal 2 with another signature" in broken.problem


def test_the_seal_failure_exits_non_zero_from_the_command_line(sealed, capsys):
    with rolled_back():
        drop_seal_triggers()
        sql("DELETE FROM audit_auditseal WHERE number = 3")
        with pytest.raises(SystemExit) as exited:
            ManagementUtility(["manage.py", "audit_verify"]).execute()

    assert exited.value.code == 1
    assert "Audit seals broken at seal 3: missing; event #10 announced it" in capsys.readouterr().err


# Alerting ---------------------------------------------------------------------------------------


def test_a_seal_break_raises_one_critical_alert(sealed):
    assert chain_watch.verify_and_alert() is True
    assert not Alert.objects.exists()

    drop_seal_triggers()  # rolled back with the test's transaction
    sql("DELETE FROM audit_auditseal WHERE number = 3")

    assert chain_watch.verify_and_alert() is False
    alert = Alert.objects.get(kind="audit_chain_broken")
    assert alert.severity == "critical"
    assert alert.details["seal"] == 3 and alert.details["sequence"] == 10
    assert "seal 3" in alert.subject
    assert chain_watch.verify_and_alert() is False
    assert Alert.objects.filter(kind="audit_chain_broken").count() == 1


def test_a_rewritten_chain_raises_the_alert_through_the_seals(sealed):
    drop_triggers()
    rewrite_event(5, {"n": 555})

    assert chain_watch.verify_and_alert() is False
    alert = Alert.objects.get(kind="audit_chain_broken")
    assert alert.details["seal"] == 2 and "event #6" in alert.details["problem"]


# Append-only ------------------------------------------------------------------------------------


def test_the_seal_triggers_are_installed(vendor):
    assert installed_seal_triggers() == set(SEAL_TRIGGERS[vendor])


def test_the_model_refuses_to_change_or_delete_a_seal(sealed):
    first = AuditSeal.objects.get(number=1)
    first.sequence = 1
    with pytest.raises(AppendOnlyError):
        first.save()
    with pytest.raises(AppendOnlyError):
        first.delete()
    assert AuditSeal.objects.get(number=1).sequence == 3


def test_raw_update_of_a_seal_is_refused_by_the_database(sealed):
    with pytest.raises(DatabaseError, match=r"audit seals are append-only \(UPDATE refused\)"), transaction.atomic():
        sql("UPDATE audit_auditseal SET head_hash = %s WHERE number = 1", ["0" * 64])
    assert AuditSeal.objects.get(number=1).head_hash == sealed[0].head_hash


def test_raw_delete_of_a_seal_is_refused_when_purging_is_off(sealed, settings):
    settings.COUNTERSIGN_AUDIT_PURGE_ALLOWED = False

    with pytest.raises(DatabaseError, match=r"audit seals are append-only \(DELETE refused\)"), transaction.atomic():
        sql("DELETE FROM audit_auditseal WHERE number = 3")
    assert AuditSeal.objects.count() == 3


# The public key ---------------------------------------------------------------------------------


def test_signing_key_public_prints_the_ed25519_key_that_verifies_seals(sealed):
    out = StringIO()
    call_command("signing_key", "--public", stdout=out)

    printed = keys.load_public_key(out.getvalue().encode())
    assert isinstance(printed, Ed25519PublicKey)
    assert keys.fingerprint(printed) == sealed[0].key_fingerprint == signing.fingerprint()
    assert seals.verify_seals(printed) == (3, None)
    assert "PRIVATE" not in out.getvalue()


def test_signing_key_fingerprint_prints_the_fingerprint(signing_key):
    out = StringIO()
    call_command("signing_key", "--fingerprint", stdout=out)
    assert out.getvalue().strip() == signing.fingerprint()


def test_seal_times_are_stored_to_the_microsecond(signing_key):
    """The signed message carries microseconds: the stored time must read back identically."""
    audit.record("test.step")
    at = timezone.now().replace(microsecond=123456) - timedelta(days=1)
    seals.seal(at=at)
    assert AuditSeal.objects.get().created_at == at
    assert seals.verify_seals() == (1, None)


# The admin --------------------------------------------------------------------------------------


def _admin_client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("persona", ["auditor", "sec"])
def test_audit_readers_see_the_seals_and_the_public_key(demo, signing_key, persona):
    first = seals.seal()
    client = _admin_client(getattr(demo, persona))

    changelist = client.get(reverse("admin:audit_auditseal_changelist"))

    assert changelist.status_code == 200
    assert list(changelist.context["cl"].result_list) == [first]
    page = changelist.content.decode()
    assert signing.public_key_pem().strip().splitlines()[1] in page
    assert signing.fingerprint() in page
    assert client.get(reverse("admin:audit_auditseal_change", args=[first.pk])).status_code == 200


def test_nobody_writes_seals_in_the_admin(demo, signing_key):
    first = seals.seal()
    client = _admin_client(demo.admin)

    assert client.get(reverse("admin:audit_auditseal_add")).status_code == 403
    assert client.post(reverse("admin:audit_auditseal_delete", args=[first.pk]), {"post": "yes"}).status_code == 403
    assert AuditSeal.objects.filter(pk=first.pk).exists()


def test_a_manager_without_view_audit_cannot_read_the_seals(demo, signing_key):
    first = seals.seal()
    client = _admin_client(demo.mgr)

    assert client.get(reverse("admin:audit_auditseal_changelist")).status_code == 403
    assert client.get(reverse("admin:audit_auditseal_change", args=[first.pk])).status_code == 403
