import zipfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import keys
from compliance import bundle_verify


class Command(BaseCommand):
    help = (
        "Check an evidence bundle offline: every file's SHA-256 and size against the signed manifest, "
        "and the manifest's Ed25519 signature. Exits non-zero naming the bad file."
    )

    def add_arguments(self, parser):
        parser.add_argument("bundle", help="the bundle (.zip)")
        parser.add_argument(
            "--public-key", help="PEM file of the Ed25519 public key (default: this server's signing key)"
        )

    def handle(self, *args, bundle, public_key=None, **options):
        try:
            if public_key:
                pem = Path(public_key).read_bytes()
            else:
                from audit import signing

                pem = signing.public_key_pem().encode()
            result = bundle_verify.verify(bundle, pem)
        except bundle_verify.BundleError as exc:
            raise CommandError(f"Bundle verification FAILED: {exc}") from exc
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise CommandError(f"Cannot read the bundle or the key: {exc}") from exc
        manifest = result.manifest
        self.stdout.write(self.style.SUCCESS(
            f"Bundle OK: {len(result.checked)} files match the manifest signed by key "
            f"{keys.fingerprint(keys.load_public_key(pem))} "
            f"({manifest.get('framework')} {manifest.get('period', {}).get('start')}.."
            f"{manifest.get('period', {}).get('end')})."
        ))
