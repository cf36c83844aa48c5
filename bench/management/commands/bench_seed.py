import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from bench.seed import SCALES, BenchDataExists, bench_fixtures, seed


class Command(BaseCommand):
    help = (
        "Load a deterministic benchmark organisation in bulk (see bench/seed.py for what each scale holds "
        "and the bench personas, password 'countersign-bench'). Refuses a database that already has it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", choices=sorted(SCALES), default="small")

    def handle(self, *args, scale, **options):
        started = time.perf_counter()
        try:
            counts = seed(scale, stdout=self.stdout if options["verbosity"] > 1 else None)
        except BenchDataExists as exc:
            raise CommandError(str(exc)) from None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Planner statistics, hint bits and the visibility map for the bulk-loaded tables, as
                # autovacuum leaves a live database: otherwise the first statement to read a table
                # after a clone pays for writing its hint bits, and whatever runs first looks slower.
                # (Inside a transaction, as in the tests, VACUUM cannot run: statistics only.)
                cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)")
        for name, value in counts.items():
            if isinstance(value, int):
                self.stdout.write(f"{name:>24}: {value:,}")
        fixtures = bench_fixtures()
        self.stdout.write(
            f"bench personas: {', '.join(fixtures['users'])} (password '{fixtures['password']}'); "
            f"{len(fixtures['pending']):,} change requests await approval, {len(fixtures['approved']):,} await "
            f"deployment; gate-ready change #{fixtures['gate_ready']}; chain head {counts['chain_head']}"
        )
        self.stdout.write(self.style.SUCCESS(f"Seeded scale {scale} in {time.perf_counter() - started:.1f} s."))
