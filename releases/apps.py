from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases"

    def ready(self):
        from releases import controls  # noqa: F401  (registers approval policies and freeze windows)
