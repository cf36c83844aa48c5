"""Where security alerts go and when the detective controls run (RULES.md K1): notification
channels and django-celery-beat's scheduled tasks, changed only through ``control_change``.

Switching a channel off or redirecting it, and disabling, deleting or slowing a scheduled task, are
weakening changes: they wait for a second person. django-celery-beat's own list actions update rows
in bulk with no trace, so its admin is replaced here. Schedule definitions (intervals, crontabs, …)
are added but never edited or deleted: editing one would change every task that uses it.
"""
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from audit.models import NotificationChannel
from core.admin import ServiceOnlyAdmin, run_per_object
from governance.admin.duties import configures_controls
from governance.controls import services
from governance.controls.admin import ControlForm, ControlledAdminMixin, DeletableControlMixin


class NotificationChannelForm(ControlForm):
    """The secret is write-only: never rendered; leaving it empty keeps the stored one."""

    secret = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="HMAC-SHA256 key for generic webhooks. Never shown again; leave empty to keep the current one.",
    )
    clear_secret = forms.BooleanField(required=False, label="Remove the stored secret")

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "team", "target", "secret", "topics", "events", "is_active"]

    def control_values(self, data) -> dict:
        values = super().control_values({**data})
        values.pop("secret", None)
        if data.get("clear_secret"):
            values["secret"] = ""  # removing the stored secret, not setting one  # nosec B105
        elif data.get("secret"):
            values["secret"] = data["secret"]
        return values

    def has_changed(self):
        return super().has_changed() or bool(self.data.get("secret")) or bool(self.cleaned_data.get("clear_secret"))


@admin.register(NotificationChannel)
class NotificationChannelAdmin(ControlledAdminMixin, ServiceOnlyAdmin):
    """Channels are switched off, not deleted, so past deliveries stay explained."""

    control_kind = "audit.notificationchannel"
    form = NotificationChannelForm
    list_display = ["name", "kind", "team_or_all", "target_hint", "topics", "is_active", "has_secret"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "team"]

    def may_read(self, request) -> bool:
        return configures_controls(request)

    @admin.display(description="Team")
    def team_or_all(self, channel):
        return channel.team or "every team"

    @admin.display(description="Target")
    def target_hint(self, channel):
        """Webhook URLs often carry a credential in their path (Slack's do): the list shows the host only."""
        if channel.kind == NotificationChannel.Kind.EMAIL:
            return channel.target
        parts = urlsplit(channel.target)
        return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "…"

    @admin.display(description="Secret", boolean=True)
    def has_secret(self, channel):
        return bool(channel.secret)


# --- Scheduled tasks --------------------------------------------------------------------------------


class PeriodicTaskControlForm(ControlForm, beat_admin.PeriodicTaskForm):
    """django-celery-beat's form (a registered task or a custom name, JSON arguments), saved through
    ``control_change``."""


for model in (PeriodicTask, ClockedSchedule, CrontabSchedule, SolarSchedule, IntervalSchedule):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(DeletableControlMixin, ControlledAdminMixin, ServiceOnlyAdmin, beat_admin.PeriodicTaskAdmin):
    control_kind = "django_celery_beat.periodictask"
    form = PeriodicTaskControlForm
    actions = ["enable_selected", "disable_selected"]

    def may_read(self, request) -> bool:
        return configures_controls(request)

    def _set_enabled(self, request, queryset, enabled: bool, verb: str):
        run_per_object(self, request, queryset, verb, lambda task: services.control_change(
            actor=request.user, kind=self.control_kind, target=task, values={"enabled": enabled}))

    @admin.action(description="Enable selected tasks")
    def enable_selected(self, request, queryset):
        self._set_enabled(request, queryset, True, "enabled")

    @admin.action(description="Disable selected tasks (a second person must approve)")
    def disable_selected(self, request, queryset):
        self._set_enabled(request, queryset, False, "proposed for disabling")


class AddOnlyScheduleAdmin(ServiceOnlyAdmin, beat_admin.ScheduleAdmin):
    """A schedule definition, shared by the tasks that use it: added, never edited or deleted."""

    def may_read(self, request) -> bool:
        return configures_controls(request)

    def has_add_permission(self, request):
        return configures_controls(request)


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(AddOnlyScheduleAdmin):
    fields = list_display = ["clocked_time"]


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(AddOnlyScheduleAdmin):
    list_display = ["__str__", "human_readable"]
    fields = ["human_readable", "minute", "hour", "day_of_month", "month_of_year", "day_of_week", "timezone"]
    readonly_fields = ["human_readable"]


@admin.register(SolarSchedule)
class SolarScheduleAdmin(AddOnlyScheduleAdmin):
    pass


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(AddOnlyScheduleAdmin):
    pass
