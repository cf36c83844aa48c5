"""The integration controls (RULES.md K1): which repositories may report commits for which team,
with the secret that proves it, and which platform login is which person. Re-pointing either
decides whose code bars whom, so each such change waits for a second person (K3)."""
from governance.controls.registry import ADMINISTRATORS, EVERYWHERE, ControlKind, all_of, changed, register, switched_off
from integrations.models import LinkedRepository, PlatformAccount

LINKED_REPOSITORY = register(ControlKind(
    key="integrations.linkedrepository",
    label="linked repository",
    model=LinkedRepository,
    fields=("platform", "full_name", "team", "webhook_secret", "is_active"),
    secret_fields=("webhook_secret",),
    scope=lambda before, after: EVERYWHERE,
    authority=ADMINISTRATORS,
    weakens=all_of(
        changed("platform", "platform"),
        changed("full_name", "repository"),
        changed("team", "team whose changes it reports on"),
        changed("webhook_secret", "webhook secret"),
        switched_off("is_active", "the repository's webhooks"),
    ),
    describe=str,
))

PLATFORM_ACCOUNT = register(ControlKind(
    key="integrations.platformaccount",
    label="platform account",
    model=PlatformAccount,
    fields=("user", "platform", "login"),
    scope=lambda before, after: EVERYWHERE,
    authority=ADMINISTRATORS,
    weakens=all_of(changed("user", "person"), changed("platform", "platform"), changed("login", "login")),
    describe=str,
))
