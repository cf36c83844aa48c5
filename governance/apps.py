from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save, pre_save

        from governance.services import accounts
        from governance.controls import kinds  # noqa: F401  (registers governance's controls)

        user_model = get_user_model()
        pre_save.connect(accounts.remember_before_save, sender=user_model, dispatch_uid="countersign_accounts_pre")
        post_save.connect(accounts.record_outside_save, sender=user_model, dispatch_uid="countersign_accounts_post")
