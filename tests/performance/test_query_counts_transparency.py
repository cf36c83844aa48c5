"""Queries per request do not grow with data (issue 21), transparency: the checkpoints witnesses
pull, the cosignatures they post, the proofs, and the admin lists of seals, timestamp authorities
and witnesses, at SMALL and LARGE seals, witnesses and cosignatures."""
import itertools
from types import SimpleNamespace

import pytest
from django.urls import reverse

import audit
from audit import checkpoint, cosignature
from audit.models import SealTimestamp, TimestampAuthority
from audit.seals import seal
from compliance.witnesses.services import cosign as store
from tests.audit.sealtools import signing_key  # noqa: F401 (fixture)
from tests.performance.counting import assert_same_at_two_sizes
from tests.witnesses.tools import new_witness, register

CHECKPOINTS = "/api/v1/audit/checkpoints/"
COSIGN = "/api/v1/audit/cosignatures/"


@pytest.fixture
def log(demo, signing_key):  # noqa: F811
    """``log.grow(n)``: n more seals, n more witnesses (each cosigning every seal so far) and n
    timestamp authorities (each stamping the newest seal); ``log.first`` is the first seal."""
    clock = itertools.count(1_700_000_000)
    witnesses, seals = [], []

    def cosign(witness, sealed):
        note = checkpoint.parse(sealed.checkpoint)[0]
        return cosignature.sign_line(note, witness.name, witness.private_key, next(clock))

    def grow(n):
        for _ in range(n):
            audit.record("test.step")
            seals.append(seal())
            witness = new_witness(f"witness.example.org/w{len(witnesses)}")
            register(demo, witness)
            witnesses.append(witness)
            for each in witnesses:
                for sealed in seals:
                    if each is witness or sealed is seals[-1]:
                        store(actor=demo.auditor, note=sealed.checkpoint + cosign(each, sealed) + "\n")
            authority = TimestampAuthority.objects.create(
                name=f"tsa {len(seals)}", url="https://tsa.example.org/", certificate="-")
            SealTimestamp.objects.create(
                seal=seals[-1], authority=authority, authority_name=authority.name, hash_algorithm="sha256",
                digest="00", response=b"-", gen_time=seals[-1].created_at, serial=str(len(seals)),
                created_at=seals[-1].created_at)

    return SimpleNamespace(grow=grow, seals=seals, witnesses=witnesses, cosign=cosign)


def test_checkpoints_proofs_and_their_admin_lists_cost_the_same_at_two_sizes(demo, api_as, client_as, log):
    def requests():
        api, admin = api_as(demo.auditor), client_as(demo.admin)
        first = log.seals[0]
        calls = {
            "api audit/checkpoints/": lambda: api.get(CHECKPOINTS),
            "api audit/checkpoints/latest/": lambda: api.get(f"{CHECKPOINTS}latest/"),
            "api audit/checkpoints/{size}/": lambda: api.get(f"{CHECKPOINTS}{first.tree_size}/"),
            "api audit/checkpoints/{size}/ (note)": lambda: api.get(f"{CHECKPOINTS}{first.tree_size}/",
                                                                    HTTP_ACCEPT="text/plain"),
            "api audit/consistency/": lambda: api.get(f"/api/v1/audit/consistency/?from=1&to={first.tree_size}"),
            "api audit-events/{sequence}/proof/": lambda: api.get(
                f"/api/v1/audit-events/1/proof/?tree_size={first.tree_size}"),
            "admin audit seal page": lambda: admin.get(reverse("admin:audit_auditseal_change", args=[first.pk])),
        }
        for label in ("audit_auditseal", "audit_timestampauthority", "compliance_witness"):
            calls[f"admin {label}"] = lambda label=label: admin.get(reverse(f"admin:{label}_changelist"))
        return calls

    assert_same_at_two_sizes(log.grow, requests)


def test_posting_a_cosignature_costs_the_same_with_more_stored(demo, api_as, log):
    """Each post cosigns a seal nobody cosigned yet, by the first witness; made before counting."""
    api = api_as(demo.auditor)
    notes = []

    def grow(n):
        log.grow(n)
        for _ in range(2):  # the warm-up post and the counted one
            audit.record("test.step")
            sealed = seal()
            notes.append(sealed.checkpoint + log.cosign(log.witnesses[0], sealed) + "\n")

    def requests():
        return {"api POST audit/cosignatures/": lambda: api.post(COSIGN, {"checkpoint": notes.pop(0)}, format="json")}

    assert_same_at_two_sizes(grow, requests)
