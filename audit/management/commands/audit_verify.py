import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import cosignature, keys, merkle, tree
from audit.chain import verify
from audit.models import ChainHead
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
        parser.add_argument(
            "--witnessed", type=Path, metavar="FILE",
            help="A witnessed checkpoint (JSON, as GET audit/checkpoints/latest/ answers it) the log must agree with.",
        )
        parser.add_argument(
            "--witness-key", action="append", default=[], metavar="VKEY",
            help="A witness's key (C2SP vkey) to check the witnessed checkpoint's cosignatures with; repeatable.",
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
        if options["witnessed"] is not None:
            self._check_witnessed(options, public_key)
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} events verified."))
        self.stdout.write(self.style.SUCCESS(f"Merkle tree intact: {leaves} leaves verified."))
        self.stdout.write(self.style.SUCCESS(f"Audit seals intact: {sealed} seals verified."))

    def _check_witnessed(self, options, public_key):
        """The tree of the witnessed size, recomputed above from the events, must have the root the
        witnesses cosigned; otherwise name the first of its perfect subtrees that differs."""
        from audit import signing

        try:
            witnessed = json.loads(options["witnessed"].read_text("utf-8"))
            keys_by_name = dict(cosignature.parse_key(text) for text in options["witness_key"])
            cp, wnodes, found = cosignature.check_witnessed(witnessed, public_key or signing.public_key(), keys_by_name)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot use the witnessed checkpoint {options['witnessed']}: {exc}") from exc
        head = ChainHead.objects.filter(pk=1).values_list("tree_size", flat=True).first() or 0
        if cp.tree_size > head:
            raise CommandError(f"The log ({head} events) is shorter than the witnessed checkpoint ({cp.tree_size}): "
                               "events were removed.")
        wanted = set(merkle.perfect_subtrees(0, cp.tree_size))
        nodes = tree.read_nodes(wanted)
        problem = cosignature.divergence(cp, wnodes, nodes, {cp.tree_size: cosignature.fold(cp.tree_size, nodes)})
        if problem:
            raise CommandError(f"The log contradicts the witnessed checkpoint: {problem}.")
        self.stdout.write(self.style.SUCCESS(
            f"Witnessed checkpoint agrees: tree of {cp.tree_size} events, cosigned by {', '.join(sorted(found))}."))
