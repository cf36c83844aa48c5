from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from governance.signals import account_deactivated
        from identity import controls  # noqa: F401  (group role mappings are controls)
        from identity.services import leavers

        account_deactivated.connect(leavers.on_account_deactivated, dispatch_uid="identity_leavers")
