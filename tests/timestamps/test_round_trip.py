"""The RFC 3161 round trip (issue 20, "Outside timestamps"): each seal's checkpoint goes to the
timestamp authorities after the seal commits, the reply is verified and stored with the seal, and
the stored token checks offline against the authority's certificate; a token for another digest,
or checked against another authority's certificate, is refused. The authority is a real one on
127.0.0.1 (``openssl ts -reply``), and ``openssl ts -verify`` checks the stored tokens too."""
import hashlib
import shutil
import subprocess  # nosec B404 - openssl checks the stored token independently
from datetime import timedelta

import pytest
from django.utils import timezone

import audit
from audit import seals, tasks, timestamp_token
from audit.models import Alert, AuditSeal, SealTimestamp
from tests.factories import set_control
from tests.timestamps import tsa as tsa_server

pytestmark = pytest.mark.django_db


def sealed(capture, *steps):
    for n in steps:
        audit.record("test.step", data={"n": n})
    with capture(execute=True):
        return seals.seal()


def test_each_seal_is_timestamped_once_it_commits(authority, tsa, django_capture_on_commit_callbacks, tmp_path):
    before = tsa.requests
    with django_capture_on_commit_callbacks(execute=False) as pending:
        audit.record("test.step", data={"n": 1})
        seal = seals.seal()
    assert not SealTimestamp.objects.exists() and tsa.requests == before  # nothing asked before the commit
    for callback in pending:
        callback()

    stamp = SealTimestamp.objects.get(seal=seal)
    assert tsa.requests == before + 1
    assert (stamp.authority_id, stamp.authority_name, stamp.hash_algorithm) == (authority.pk, "Local TSA", "sha256")
    assert stamp.digest == hashlib.sha256(seal.checkpoint.encode()).hexdigest()
    assert abs(stamp.gen_time - timezone.now()) < timedelta(minutes=1) and int(stamp.serial) > 0

    # Offline, from the stored bytes alone: rfc3161-client, and openssl as a second implementation.
    token = timestamp_token.check(bytes(stamp.response), seal.checkpoint.encode(), tsa.certificate)
    assert (token.gen_time, str(token.serial)) == (stamp.gen_time, stamp.serial) and "Test TSA" in token.authority
    (tmp_path / "reply.tsr").write_bytes(bytes(stamp.response))
    (tmp_path / "checkpoint.txt").write_bytes(seal.checkpoint.encode())
    (tmp_path / "ca.pem").write_text(tsa.certificate)
    verified = subprocess.run([shutil.which("openssl"), "ts", "-verify", "-data", str(tmp_path / "checkpoint.txt"),  # nosec B603
                               "-in", str(tmp_path / "reply.tsr"), "-CAfile", str(tmp_path / "ca.pem")],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stderr

    # Stamped once: the next run asks only for what is missing.
    assert tasks.timestamp_seal(seal.number) == 0 and tsa.requests == before + 1


def test_a_token_for_another_digest_is_refused(authority, tsa, django_capture_on_commit_callbacks):
    first = sealed(django_capture_on_commit_callbacks, 1, 2)
    second = sealed(django_capture_on_commit_callbacks, 3)
    token = bytes(SealTimestamp.objects.get(seal=first).response)
    timestamp_token.check(token, first.checkpoint.encode(), tsa.certificate)

    with pytest.raises(timestamp_token.DigestMismatch, match="the token is for another digest") as caught:
        timestamp_token.check(token, second.checkpoint.encode(), tsa.certificate)
    assert caught.value.stamp.digest == hashlib.sha256(first.checkpoint.encode()).digest()
    with pytest.raises(timestamp_token.DigestMismatch):
        timestamp_token.check(token, first.checkpoint.replace("time ", "time  ").encode(), tsa.certificate)


def test_a_token_checked_against_another_authority_is_refused(authority, tsa, django_capture_on_commit_callbacks):
    seal = sealed(django_capture_on_commit_callbacks, 1)
    token = bytes(SealTimestamp.objects.get(seal=seal).response)
    other_ca, other_tsa, _ = tsa_server.make_authority("Elsewhere TSA")

    for certificate in (other_ca, other_tsa):
        with pytest.raises(timestamp_token.TokenError, match="does not verify against the authority's certificate") as caught:
            timestamp_token.check(token, seal.checkpoint.encode(), certificate)
        assert not isinstance(caught.value, timestamp_token.DigestMismatch)
    with pytest.raises(timestamp_token.TokenError, match="not an RFC 3161"):
        timestamp_token.check(token[:-7], seal.checkpoint.encode(), tsa.certificate)
    with pytest.raises(timestamp_token.TokenError, match="no PEM certificate"):
        timestamp_token.check(token, seal.checkpoint.encode(), "not a certificate")


def test_a_reply_that_does_not_verify_is_not_stored_and_alerts(demo, tsa, django_capture_on_commit_callbacks):
    other_ca, _, _ = tsa_server.make_authority("Elsewhere TSA")
    set_control(by=demo.admin, control="audit.timestampauthority", name="Mislabelled TSA", url=tsa.url,
                certificate=other_ca, is_active=True)
    seal = sealed(django_capture_on_commit_callbacks, 1)

    assert AuditSeal.objects.filter(pk=seal.pk).exists() and not SealTimestamp.objects.exists()
    alert = Alert.objects.get(kind="timestamp_failed", status=Alert.Status.OPEN)
    assert "Mislabelled TSA" in alert.subject and "does not verify" in alert.details["problem"]


def test_an_authority_that_is_down_never_blocks_sealing_and_is_retried(demo, django_capture_on_commit_callbacks):
    down = tsa_server.start("Flaky TSA")
    try:
        set_control(by=demo.admin, control="audit.timestampauthority", name="Flaky TSA", url=down.url,
                    certificate=down.certificate, is_active=True)
        down.stop()
        seal = sealed(django_capture_on_commit_callbacks, 1, 2)

        assert seal is not None and AuditSeal.objects.filter(pk=seal.pk).exists()  # sealed all the same
        assert not SealTimestamp.objects.exists()
        alert = Alert.objects.get(kind="timestamp_failed", status=Alert.Status.OPEN)
        assert alert.severity == Alert.Severity.HIGH and "could not reach" in alert.details["problem"]
        assert audit.models.AuditEvent.objects.filter(action="alert.raised", data__kind="timestamp_failed").exists()

        tasks.seal_chain()  # still down: nothing new to seal, the retry fails again, one alert stays open
        assert not SealTimestamp.objects.exists() and Alert.objects.filter(kind="timestamp_failed").count() == 1

        down.restart()
        with django_capture_on_commit_callbacks(execute=True):
            tasks.seal_chain()  # the hourly run asks again for the missing token
        assert SealTimestamp.objects.get(seal=seal).authority_name == "Flaky TSA"
        timestamp_token.check(bytes(SealTimestamp.objects.get(seal=seal).response), seal.checkpoint.encode(),
                              down.certificate)
    finally:
        down.close()


def test_an_inactive_authority_is_not_asked(demo, tsa, authority, django_capture_on_commit_callbacks):
    set_control(authority, by=demo.admin, second=demo.sec, is_active=False)
    before = tsa.requests
    sealed(django_capture_on_commit_callbacks, 1)
    assert tsa.requests == before and not SealTimestamp.objects.exists() and not Alert.objects.exists()


def test_the_seal_page_shows_its_timestamps(demo, authority, client_as, django_capture_on_commit_callbacks):
    from django.urls import reverse

    seal = sealed(django_capture_on_commit_callbacks, 1)
    stamp = SealTimestamp.objects.get(seal=seal)
    page = client_as(demo.admin).get(reverse("admin:audit_auditseal_change", args=[seal.pk]))
    assert page.status_code == 200
    assert f"Local TSA at {stamp.gen_time:%Y-%m-%d %H:%M:%S} UTC (serial {stamp.serial})" in page.content.decode()
