"""``create_api_token USERNAME [--expires-days N] [--name NAME]``: issue an API key and print it once.

Only the key goes to stdout, so a script can capture it (``KEY=$(manage.py create_api_token ci)``);
what it is and when it expires go to stderr."""
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from governance import services
from core.english import possessive


class Command(BaseCommand):
    help = "Create an API key for USERNAME and print it once; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--expires-days", type=int, default=None, help="Lifetime in days (default: the setting).")
        parser.add_argument("--name", default="", help="What the key is for, e.g. the CI pipeline.")

    def handle(self, *args, username, expires_days, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user is named {username}.")
        if not user.is_active:
            raise CommandError(f"{possessive(username)} account is disabled; a key would not work.")
        try:
            token, key = services.api_token_create(actor=None, user=user, name=name, expires_days=expires_days,
                                                    source="create_api_token command")
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(key)
        self.stderr.write(
            f"Key {token.prefix}… for {username} expires {token.expires_at:%Y-%m-%d %H:%M} UTC. "
            "Store it now: it cannot be shown again."
        )
