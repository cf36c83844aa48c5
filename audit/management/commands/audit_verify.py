from django.core.management.base import BaseCommand, CommandError

from audit.chain import verify


class Command(BaseCommand):
    help = "Recompute the audit hash chain; exit non-zero naming the first broken event."

    def handle(self, *args, **options):
        checked, broken = verify()
        if broken is not None:
            raise CommandError(f"Audit chain broken at {broken} ({checked} events verified before it).")
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} events verified."))
