"""Issue 7, point 6: the backup and restore drill of docs/operations.md, step by step.

Seed, seal the audit chain and build an evidence bundle; back up what a deployment must back up
(``pg_dump`` of the database, the signing key file, the evidence bundles); restore the dump into a
NEW database; then ``audit_verify`` and ``evidence_verify`` of the earlier bundle pass against the
restored database with the restored key, and fail with any other key (so the key is shown to be
part of the backup, and the checks are shown to be able to fail)."""
import shutil
import subprocess
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit import seals
from compliance.evidence import services as evidence
from audit.models import AuditEvent, AuditSeal, EvidenceExport
from tests.resilience.servers import manage, server_env

pytestmark = [pytest.mark.postgres, pytest.mark.resilience, pytest.mark.django_db(transaction=True)]


def _pg_args(name: str) -> list[str]:
    db = settings.DATABASES["default"]
    return ["-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432), "-U", db.get("USER") or "postgres",
            "-d", name]


def _url(name: str) -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


@pytest.fixture
def restored_db():
    """The name of a database that does not exist yet; dropped after the test, pass or fail."""
    name = f"{connection.settings_dict['NAME']}_restored"
    admin = [*_pg_args("postgres")]
    subprocess.run(["psql", *admin, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True)
    yield name
    subprocess.run(["psql", *admin, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True)


def test_a_restored_backup_verifies_its_chain_seals_and_an_earlier_bundle(settings, tmp_path, restored_db):
    live, backup = tmp_path / "live", tmp_path / "backup"
    settings.SIGNING_KEY_FILE = live / "signing_key.pem"
    settings.SIGNING_KEY_AUTOGENERATE = True
    settings.EVIDENCE_ROOT = live / "evidence"
    live.mkdir()

    # Production-like history: the demo, a seal over its chain, and a SOX bundle of the period.
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    assert seals.seal() is not None
    auditor = get_user_model().objects.get(username="auditor")
    today = timezone.now().date()
    export = evidence.export_request(actor=auditor, framework="sox", period_start=today - timedelta(days=30),
                                     period_end=today)
    export.refresh_from_db()
    assert export.status == EvidenceExport.Status.DONE, (export.status, export.error)
    bundle = evidence.bundle_path(export)
    assert bundle.is_file()
    events, sealed = AuditEvent.objects.count(), AuditSeal.objects.count()

    # 1. Back up: the database, the signing key, the bundles.
    backup.mkdir()
    dump = backup / "countersign.dump"
    subprocess.run(["pg_dump", *_pg_args(connection.settings_dict["NAME"]), "--format=custom", "--no-owner",
                    "--file", str(dump)], check=True)
    shutil.copy2(settings.SIGNING_KEY_FILE, backup / "signing_key.pem")
    shutil.copytree(settings.EVIDENCE_ROOT, backup / "evidence")

    # 2. Restore into a new database.
    subprocess.run(["createdb", *_pg_args(restored_db)[:-2], restored_db], check=True)
    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", *_pg_args(restored_db), str(dump)], check=True)

    # 3. Verify against the restored database, with the restored key (never generated afresh).
    env = server_env(_url(restored_db), tmp_path / "restored-var", SIGNING_KEY_FILE=backup / "signing_key.pem",
                     SIGNING_KEY_AUTOGENERATE="0", EVIDENCE_ROOT=backup / "evidence")
    verified = manage(env, "audit_verify")
    assert f"{events} events verified" in verified and f"{sealed} seals verified" in verified, verified
    restored_bundle = backup / "evidence" / bundle.relative_to(settings.EVIDENCE_ROOT)
    checked = manage(env, "evidence_verify", str(restored_bundle))
    assert "Bundle OK" in checked, checked
    counted = manage(env, "shell", "-c", "from audit.models import AuditEvent; print(AuditEvent.objects.count())")
    assert int(counted.split()[-1]) == events

    # ... and a key that is not the backed-up one fails both checks: the key is part of the backup.
    other = server_env(_url(restored_db), tmp_path / "other-var", SIGNING_KEY_FILE=tmp_path / "other-var" / "key.pem",
                       SIGNING_KEY_AUTOGENERATE="1")
    for command in (["audit_verify"], ["evidence_verify", str(restored_bundle)]):
        with pytest.raises(AssertionError, match="exited 1"):
            manage(other, *command)

