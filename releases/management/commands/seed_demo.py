from django.core.management.base import BaseCommand
from django.db import transaction

from governance.demo import PASSWORD, PEOPLE
from releases.demo import seed_demo


class Command(BaseCommand):
    help = "Load the demo organisation of API.md (password: countersign-demo). Idempotent."

    def handle(self, *args, **options):
        with transaction.atomic():
            seed_demo()
        names = ", ".join([p[0] for p in PEOPLE] + ["admin"])
        self.stdout.write(self.style.SUCCESS(f"Demo ready. Personas (password '{PASSWORD}'): {names}"))
