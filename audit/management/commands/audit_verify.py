from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import keys, tree
from audit.chain import verify
from audit.seals import verify_seals


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chain, check every seal and its checkpoint, and recompute the Merkle "
        "tree; exit non-zero naming the first broken event or seal."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--public-key", type=Path, metavar="FILE",
            help="PEM public key to check the seals with (default: the server's signing key).",
        )

    def handle(self, *args, **options):
        checked, broken = verify()
        if broken is not None:
            raise CommandError(f"Audit chain broken at {broken} ({checked} events verified before it).")
        public_key = None
        if options["public_key"] is not None:
            try:
                public_key = keys.load_public_key(options["public_key"].read_bytes())
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read the public key {options['public_key']}: {exc}") from exc
        sealed, seal_broken = verify_seals(public_key)
        if seal_broken is not None:
            raise CommandError(
                f"Audit seals broken at {seal_broken} ({checked} events and {sealed} seals verified before it)."
            )
        leaves, tree_broken = tree.verify()
        if tree_broken is not None:
            raise CommandError(f"Merkle tree broken at event #{tree_broken[0]}: {tree_broken[1]} "
                               f"({leaves} leaves recomputed).")
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} events verified."))
        self.stdout.write(self.style.SUCCESS(f"Merkle tree intact: {leaves} leaves verified."))
        self.stdout.write(self.style.SUCCESS(f"Audit seals intact: {sealed} seals verified."))
