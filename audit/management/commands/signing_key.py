from django.core.management.base import BaseCommand

from audit import signing


class Command(BaseCommand):
    help = (
        "Print the public half of the server's Ed25519 signing key (RULES.md L2, L3), which auditors "
        "use to check seals and evidence bundles. Never prints the private key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--public", action="store_true", help="Print the public key (PEM).")
        parser.add_argument("--fingerprint", action="store_true", help="Print the key's SHA-256 fingerprint (hex).")

    def handle(self, *args, **options):
        both = not (options["public"] or options["fingerprint"])
        if options["public"] or both:
            self.stdout.write(signing.public_key_pem(), ending="")
        if options["fingerprint"] or both:
            self.stdout.write(signing.fingerprint())
