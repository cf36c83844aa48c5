"""Helpers for the seal tests: a signing key per test, a sealed log, and raw SQL that plays an
attacker with database access (triggers off, rows rewritten, every hash recomputed)."""
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection

import audit
from audit.chain import compute_hash
from audit.models import AuditEvent, ChainHead
from audit.seals import seal
from tests.audit.rawsql import set_event_data, sql

# Trigger names as created by audit/migrations/0006_seal_triggers.py.
SEAL_TRIGGERS = {
    "sqlite": ["audit_seal_no_update", "audit_seal_no_delete"],
    "postgresql": ["audit_seal_append_only", "audit_seal_no_truncate"],
}


@pytest.fixture
def signing_key(settings, tmp_path):
    """A fresh server key for the test (generated on first use), never the developer's var/ key."""
    settings.SIGNING_KEY_FILE = tmp_path / "signing_key.pem"
    settings.SIGNING_KEY_AUTOGENERATE = True
    return settings.SIGNING_KEY_FILE


@pytest.fixture
def sealed(signing_key):
    """Three seals over events 1-3, 1-6 and 1-9; each seal is announced by the event after it
    (#4, #7, #10). Returns the seals, oldest first."""
    seals = []
    for steps in ((1, 2, 3), (5, 6), (8, 9)):
        for n in steps:
            audit.record("test.step", data={"n": n})
        seals.append(seal())
    return seals


def installed_seal_triggers() -> set[str]:
    if connection.vendor == "sqlite":
        rows = sql("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_auditseal'")
    else:
        rows = sql("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_auditseal'::regclass AND NOT tgisinternal")
    return {name for (name,) in rows}


def drop_seal_triggers() -> None:
    """Only inside a rolled-back savepoint (``rawsql.rolled_back``) or a ``db`` test."""
    for name in SEAL_TRIGGERS[connection.vendor]:
        if connection.vendor == "sqlite":
            sql(f"DROP TRIGGER {name}")
        else:
            sql(f"DROP TRIGGER {name} ON audit_auditseal")


def rewrite_event(sequence: int, data: dict) -> None:
    """Change one event's data and recompute its hash and every later one, chain head included:
    the forgery the hash chain alone cannot see. Event triggers must be off."""
    set_event_data(sequence, json.dumps(data))
    prev_hash = AuditEvent.objects.get(sequence=sequence).prev_hash
    for later in AuditEvent.objects.filter(sequence__gte=sequence).order_by("sequence"):
        new_hash = compute_hash(later, prev_hash)
        sql("UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE sequence = %s",
            [prev_hash, new_hash, later.sequence])
        prev_hash = new_hash
    ChainHead.objects.filter(pk=1).update(hash=prev_hash)


def other_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def pem_of(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
