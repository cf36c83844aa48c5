"""Linked repositories and platform accounts are controls (integrations.controls): changed only
through ``control_change``. Deliveries and what was learnt from them are read-only records."""
from django import forms
from django.contrib import admin

from core.admin import ServiceOnlyAdmin
from governance.admin.duties import configures_controls
from governance.controls.admin import ControlForm, ControlledAdminMixin
from integrations.models import (LearntContributor, LinkedRepository, PlatformAccount, ProtectionRequest,
                                 ReportedDeployment, WebhookDelivery)


class LinkedRepositoryForm(ControlForm):
    """The secret is write-only: never rendered; leaving it empty keeps the stored one."""

    webhook_secret = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="GitHub's webhook secret or GitLab's secret token. Never shown again; leave empty to keep it.",
    )

    class Meta:
        model = LinkedRepository
        fields = ["platform", "full_name", "team", "webhook_secret", "is_active"]

    def control_values(self, data) -> dict:
        values = super().control_values({**data})
        values.pop("webhook_secret", None)
        if data.get("webhook_secret"):
            values["webhook_secret"] = data["webhook_secret"]
        return values

    def has_changed(self):
        return super().has_changed() or bool(self.data.get("webhook_secret"))


@admin.register(LinkedRepository)
class LinkedRepositoryAdmin(ControlledAdminMixin, ServiceOnlyAdmin):
    control_kind = "integrations.linkedrepository"
    form = LinkedRepositoryForm
    list_display = ["full_name", "platform", "team", "is_active"]
    list_filter = ["platform", "is_active"]

    def may_read(self, request) -> bool:
        return configures_controls(request)


@admin.register(PlatformAccount)
class PlatformAccountAdmin(ControlledAdminMixin, ServiceOnlyAdmin):
    control_kind = "integrations.platformaccount"
    list_display = ["login", "platform", "user"]
    list_filter = ["platform"]
    search_fields = ["login", "user__username"]

    def may_read(self, request) -> bool:
        return configures_controls(request)


class ReadOnlyAdmin(ServiceOnlyAdmin):
    """What the platforms sent and what was learnt from it: the superuser's to read, nobody's to edit."""

    def may_read(self, request) -> bool:
        user = request.user
        return user.is_active and user.is_staff and user.is_superuser


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["delivery_id", "platform", "event", "repository", "received_at", "processed_at", "outcome"]
    list_filter = ["platform", "event"]
    exclude = ["payload"]


@admin.register(LearntContributor)
class LearntContributorAdmin(ReadOnlyAdmin):
    list_display = ["change_request", "source", "login", "email", "user", "commit_sha", "learnt_at"]
    list_select_related = ["change_request", "user"]  # user may be null: Django's default join skips it
    list_filter = ["source"]


@admin.register(ProtectionRequest)
class ProtectionRequestAdmin(ReadOnlyAdmin):
    list_display = ["repository", "environment_name", "sha", "actor_login", "change_request", "state", "failures",
                    "answered_at"]
    list_select_related = ["repository", "change_request"]
    list_filter = ["state"]
    search_fields = ["repository__full_name", "sha", "actor_login"]


@admin.register(ReportedDeployment)
class ReportedDeploymentAdmin(ReadOnlyAdmin):
    list_display = ["reported_at", "source", "repository", "external_id", "environment_name", "commit_sha", "status"]
    list_select_related = ["repository"]
    list_filter = ["source", "status"]
