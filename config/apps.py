"""The project's own app config: wires the brute-force lockout signal and the deploy checks at
start-up, whatever process starts (web, worker, management command)."""
from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "config"
    label = "countersign_security"
    verbose_name = "Countersign security"

    def ready(self):
        from config import checks, lockout  # noqa: F401  (registers the receiver and the checks)
