"""The admin toolkit every app's admin shares: the service-backed forms, the per-object runner for
list actions, and the service-only base admin (who reads it is each admin's ``may_read``).

Nothing here writes a governed model: forms validate *by* calling a service, so a refusal becomes
form errors carrying the service's reason codes and nothing is written. Imports no app."""
import datetime

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import formats, timezone
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from django.contrib import admin

from core.errors import Refused


def describe_refusal(refusal: Refused) -> str:
    return "; ".join(f"{reason.code}: {reason.message}" for reason in refusal.reasons)


def describe_invalid(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return " ".join(error.messages)


def run_per_object(modeladmin, request, queryset, verb: str, call) -> None:
    """Call a service for each selected object and report each outcome on its own, so one refusal
    neither hides nor undoes the others (each service call is its own transaction)."""
    for obj in queryset:
        try:
            call(obj)
        except Refused as refusal:
            modeladmin.message_user(request, f"{obj}: not {verb}. {describe_refusal(refusal)}", messages.ERROR)
        except ValidationError as error:
            modeladmin.message_user(request, f"{obj}: not {verb}. {describe_invalid(error)}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{obj}: {verb}.", messages.SUCCESS)


class ReasonActionForm(helpers.ActionForm):
    """The changelist's action bar, with the reason that revoking (and optionally rejecting) needs."""

    reason = forms.CharField(required=False, label="Reason (for revoke / reject):")


class ServiceAddForm(forms.ModelForm):
    """An add form whose validation is the service call itself.

    ``clean()`` runs the service inside the admin's transaction: a ``Refused`` becomes one form
    error per reason (code and message), a ``ValidationError`` becomes field errors, and in both
    cases the service has written nothing. On success the created object is the form's instance,
    so the admin has nothing left to save. ``actor`` is bound per request by the admin."""

    actor = None

    def perform(self, data):
        raise NotImplementedError

    def clean(self):
        data = super().clean()
        self.created = None
        if self.errors:
            return data
        try:
            self.created = self.perform(data)
        except Refused as refusal:
            for reason in refusal.reasons:
                self.add_error(None, f"{reason.code}: {reason.message}")
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, errors in error.error_dict.items():
                    self.add_error(field if field in self.fields else None, errors)
            else:
                self.add_error(None, error)
        return data

    def _post_clean(self):
        # The service validated and created the object: adopt it instead of building and
        # validating a second, unsaved instance from the form data.
        if getattr(self, "created", None) is not None:
            self.instance = self.created


class OfferedModelChoiceField(forms.ModelChoiceField):
    """Lists only ``offered`` rows (what the actor may pick) but accepts any row of ``queryset``,
    so a stale or forged choice reaches the service and is refused with its reason code
    (``missing_duty``, ``self_grant``, ``not_team_member``) rather than a bare "invalid choice"."""

    def __init__(self, queryset, *, offered, **kwargs):
        self.offered = offered
        super().__init__(queryset, **kwargs)

    def _get_choices(self):
        if hasattr(self, "_choices"):
            return self._choices
        choices = self.iterator(self)
        choices.queryset = self.offered.all()
        return choices

    choices = property(_get_choices, forms.ChoiceField.choices.fset)


class ServiceOnlyAdmin(admin.ModelAdmin):
    """The base of every admin page: who reads it is ``may_read``; adding and changing are off
    unless a subclass offers them (through a service), and nothing is ever deleted here.

    - ``visible(request)``: the rows the user may see (RULES.md V1, V2, V4), or None for every
      row (the default). With it, every page reads through it and one object outside it is
      missing, not forbidden. Overrides memoise it with ``core.memo.per_request``.
    - ``add_fields`` / ``detail_fields``: the add form's fields and the (read-only) fields of an
      existing row, also read-only on simple-history's page of a past version.
    - Every form is bound to the request's user as ``actor``: a service-backed form acts as them."""

    add_fields: list[str] | None = None
    detail_fields: list[str] | None = None

    def may_read(self, request) -> bool:
        raise NotImplementedError

    def visible(self, request):
        return None

    def get_queryset(self, request):
        visible = self.visible(request)
        if visible is None:
            return super().get_queryset(request)
        queryset = visible.all()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def has_module_permission(self, request):
        return self.may_read(request)

    def has_view_permission(self, request, obj=None):
        if not self.may_read(request):
            return False
        visible = None if obj is None else self.visible(request)
        return visible is None or visible.filter(pk=obj.pk).exists()

    def get_fields(self, request, obj=None):
        if self.detail_fields is None:
            return super().get_fields(request, obj)
        return self.add_fields if obj is None else self.detail_fields

    def get_readonly_fields(self, request, obj=None):
        if self.detail_fields is None:
            return super().get_readonly_fields(request, obj)
        return [] if obj is None else self.detail_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        raise PermissionDenied

    def delete_queryset(self, request, queryset):
        raise PermissionDenied


class ReadableHistory(HistoricalRecordContextHelper):
    """The "Changes" column of a history page in words: an empty value is "—" (simple-history shows
    a foreign key that was empty as "Deleted user (pk=None)"), a time in the portal's format with
    its zone, a choice by its label, a flag as yes/no."""

    def prepare_delta_change_value(self, change, value):
        field = self.model._meta.get_field(change.field)
        if value is None or value == "" or (isinstance(value, DeletedObject) and value.pk is None):
            return "—"
        if isinstance(value, datetime.datetime):
            return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")
        if isinstance(value, datetime.date):
            return formats.date_format(value, "DATE_FORMAT")
        if isinstance(value, bool):
            return "yes" if value else "no"
        if getattr(field, "flatchoices", None):
            return dict(field.flatchoices).get(value, value)
        return super().prepare_delta_change_value(change, value)


class ServiceOnlyHistoryAdmin(ServiceOnlyAdmin, SimpleHistoryAdmin):
    """With simple-history's pages, read-only: its revert form would save a past version directly.
    Its list (templates/simple_history/object_history_list.html) reads as words (ReadableHistory)."""

    def get_historical_record_context_helper(self, request, historical_record):
        return ReadableHistory(self.model, historical_record)

    def revert_disabled(self, request, obj=None):
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)
