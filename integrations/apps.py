from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self):
        from integrations import controls, receivers, sources  # noqa: F401  (controls, attestations, webhook work)
