"""``attestation_verify FILE [--public-key PEM] [--digest sha256:…]``: check a DSSE envelope
offline. Exit 0 when valid; non-zero naming why not (``expired``, ``bad_signature``, …)."""
import json
from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import signing
from integrations import attestation_verify


class Command(BaseCommand):
    help = "Verify a Countersign attestation (DSSE envelope): signature, subject digest, expiry."

    def add_arguments(self, parser):
        parser.add_argument("envelope")
        parser.add_argument("--public-key", help="PEM file of the Ed25519 public key (default: this server's)")
        parser.add_argument("--digest", help="the artifact digest the attestation must be about")
        parser.add_argument("--at", help="judge expiry as of this ISO time (default: now)")

    def handle(self, *args, envelope, public_key=None, digest=None, at=None, **options):
        try:
            data = json.loads(Path(envelope).read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"malformed: cannot read {envelope}: {exc}") from None
        pem = Path(public_key).read_bytes() if public_key else signing.public_key_pem().encode()
        try:
            when = datetime.fromisoformat(at) if at else None
        except ValueError:
            raise CommandError(f"--at {at!r} is not an ISO time") from None
        verdict = attestation_verify.verify(data, pem, digest=digest, now=when)
        if not verdict.ok:
            raise CommandError(f"{verdict.status}: {verdict.message}")
        self.stdout.write(f"valid: {verdict.message}")
