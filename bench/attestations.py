"""``make bench``'s attestation lines (issue 21): issuing and verifying the signed in-toto
attestations of approved production changes, each beside its floor measured in the same run: a bare
Ed25519 sign or verify (``cryptography``) of the same bytes.

One production change of the demo organisation is approved as the release stories do it (staged,
then two reviewers' sign-offs; tests/releases/stories.py), which issues its attestation. Then:

* **issue**: ``integrations.attestations.issue`` of that change as the approval's receiver calls it,
  with the policy context the transition was decided with (built once, outside the timing: the
  decision pays for it): build the Statement (the approvers' accounts and roles, the policy's
  version), sign its DSSE envelope, store the row; against its floor, signing the envelope's PAE
  bytes with the server's key alone;
* **verify**: ``integrations.attestation_verify.verify`` of the envelope (key, base64, signature,
  statement, subject digest, expiry), against its floor, verifying the signature over the same PAE
  bytes with the public key alone.

Figure and floor alternate operation by operation, each going first in every other round, so
drift on a shared machine hits both alike;
each rate is one over the median time of its operations (a median, so that another process taking
the core for a moment moves no figure). Targets (docs/performance.md): an issue at most
``TARGET_ISSUE_MS`` (what it adds to a production approval); a verify at least
``TARGET_VERIFY_RATIO`` of the bare verify's rate (the checks around the signature cost no more
than the signature).

Run by bench/run.py in a throwaway test database (PostgreSQL when DATABASE_URL names one, else
SQLite); prints one JSON line. ``BENCH_ATTESTATIONS`` (operations of each kind, default 1000).
"""
import base64
import os
import statistics
import sys
import time
from datetime import datetime, time as clock, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

TARGET_ISSUE_MS = 20.0
TARGET_VERIFY_RATIO = 0.5
ARTIFACT = "registry.example.com/payments-api@sha256:" + "be" * 32


def _tuesday_morning(zone: str) -> datetime:
    """Next Tuesday 10:00 in the team's zone: inside every deploy window (tests/integrations)."""
    day = datetime.now(ZoneInfo(zone)).date() + timedelta(days=1)
    while day.isoweekday() != 2:
        day += timedelta(days=1)
    return datetime.combine(day, clock(10), tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)


def approved_change():
    """The demo organisation, and one production change approved as the stories do it: (change, at)."""
    from django.contrib.auth import get_user_model

    from governance.models import Environment, Team
    from releases import services
    from releases.demo import seed_demo

    seed_demo()
    people = {u.username: u for u in get_user_model().objects.all()}
    payments = Team.objects.get(slug="payments")
    staging, production = (Environment.objects.get(slug=s) for s in ("staging", "production"))
    at = _tuesday_morning(payments.time_zone)

    def submitted(environment):
        cr = services.change_request_create(actor=people["dev"], team=payments, environment=environment,
                                            title="Retry card authorisation on timeout", artifact=ARTIFACT, at=at)
        return services.change_request_submit(actor=people["dev"], change_request=cr, at=at)

    staged = services.change_request_approve(actor=people["rev"], change_request=submitted(staging), at=at)
    deployment = services.deployment_start(actor=people["ops"], change_request=staged, at=at)
    services.deployment_finish(actor=people["ops"], deployment=deployment, outcome="succeeded", at=at)
    cr = submitted(production)
    for reviewer in ("rev", "rev2"):
        cr = services.change_request_approve(actor=people[reviewer], change_request=cr, via="portal", at=at)
    return cr, at


def _timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def measure(operations: int) -> dict:
    """``operations`` issues, signs, verifies and bare verifies, alternating: the median of each, and checks."""
    from audit import signing
    from integrations import attestation_verify, attestations
    from integrations.models import Attestation
    from releases.selectors import change_request_for_decision, policy_context

    cr, at = approved_change()
    approval = Attestation.objects.filter(change_request=cr).first()
    if approval is None:
        raise RuntimeError("the approved production change issued no attestation")
    # Issued at the same ``at``, every envelope is this one, byte for byte: the floors sign and
    # verify its PAE bytes, and Ed25519 being deterministic, the bare signature is the envelope's.
    envelope = approval.envelope
    message = attestation_verify.pae(envelope["payloadType"], base64.b64decode(envelope["payload"]))
    private, public, pem = signing.private_key(), signing.public_key(), signing.public_key_pem().encode()
    signature = private.sign(message)
    digest = ARTIFACT.split("@sha256:")[1]
    decided = change_request_for_decision(cr.pk)
    context = policy_context(decided, decided.author, at=at)
    if base64.b64decode(envelope["signatures"][0]["sig"]) != signature:
        raise RuntimeError("the envelope's signature is not the bare signature of its PAE bytes")
    operation = {
        "issue": lambda: attestations.issue(context, kind="approval", at=at).envelope == envelope,
        "sign": lambda: private.sign(message) == signature,
        "verify": lambda: attestation_verify.verify(envelope, pem, now=at, digest=digest).ok,
        "bare_verify": lambda: public.verify(signature, message) is None,  # raises if it does not verify
    }
    samples = {kind: [] for kind in operation}
    valid = 0
    for i in range(operations):
        # Each figure beside its floor, which goes first in every other round (the one after the
        # other finds the caches warm).
        checks = []
        for pair in (("issue", "sign"), ("verify", "bare_verify")):
            for kind in pair if i % 2 else pair[::-1]:
                elapsed, ok = _timed(operation[kind])
                samples[kind].append(elapsed)
                checks.append(ok)
        valid += all(checks)
    median_us = {kind: statistics.median(times) * 1e6 for kind, times in samples.items()}
    return {"operations": operations, "median_us": median_us, "valid": valid, "payload_bytes": len(message),
            "stored": Attestation.objects.filter(change_request=cr).count()}


def run() -> dict:
    from django.db import connection

    operations = int(os.environ.get("BENCH_ATTESTATIONS", "1000"))
    return {"vendor": connection.vendor, "target_issue_ms": TARGET_ISSUE_MS,
            "target_verify_ratio": TARGET_VERIFY_RATIO, **measure(operations)}


def lines(r: dict) -> list[tuple[str, bool]]:
    n, us = r["operations"], r["median_us"]
    rate = {kind: 1e6 / us[kind] for kind in us}
    # Every round's issue gave the same envelope (so signed the floor's bytes) and every check held;
    # one row more than issued: the approval's own.
    sound = r["valid"] == n and r["stored"] == n + 1
    issue_ms = us["issue"] / 1000
    issue_ok = sound and issue_ms <= r["target_issue_ms"]
    verify_ratio = rate["verify"] / rate["bare_verify"]
    verify_ok = sound and verify_ratio >= r["target_verify_ratio"]
    about = f"median of {n:,} each, {r['payload_bytes']:,}-byte PAE, {r['valid']:,} rounds sound"
    return [
        (f"attestation issue ({r['vendor']}; as an approval does: build, sign, store; {about}): {rate['issue']:,.0f}/s "
         f"= {issue_ms:.2f} ms | floor (bare Ed25519 sign of the same bytes): {rate['sign']:,.0f}/s | ratio "
         f"{rate['issue'] / rate['sign']:.4f} | target <= {r['target_issue_ms']:.0f} ms an issue | "
         f"{'OK' if issue_ok else 'MISSED'}", issue_ok),
        (f"attestation verify (envelope, signature, statement, digest, expiry; {about}): {rate['verify']:,.0f}/s | "
         f"floor (bare Ed25519 verify of the same bytes): {rate['bare_verify']:,.0f}/s | ratio {verify_ratio:.2f} | "
         f"target >= {r['target_verify_ratio']} x floor | {'OK' if verify_ok else 'MISSED'}", verify_ok),
    ]


if __name__ == "__main__":
    from bench.throwaway import measure_in_throwaway_database

    measure_in_throwaway_database(run)
