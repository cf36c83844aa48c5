from django.core.management.base import BaseCommand

from identity.services.credentials import provisioning_credential_create


class Command(BaseCommand):
    help = "Issue the bearer token an identity provider (Okta, Entra ID) provisions with at /scim/v2/."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Which provider: okta, entra, ...")
        parser.add_argument("--days", type=int, default=None, help="Lifetime (default: the API key default).")

    def handle(self, *args, name, days, **options):
        credential, key = provisioning_credential_create(name=name, expires_days=days)
        self.stdout.write(f"{credential.name}: expires {credential.token.expires_at:%Y-%m-%d}\n{key}\n")
        self.stderr.write("Shown once: paste it into the provider's SCIM app as the bearer token.")
