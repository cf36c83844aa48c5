"""The admin toolkit every app's admin shares: duties held now (read once per request), the
service-backed forms, the per-object runner for list actions, and the service-only base admin.

Nothing here writes a governed model: forms validate *by* calling a service, so a refusal becomes
form errors carrying the service's reason codes and nothing is written."""
from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from simple_history.admin import SimpleHistoryAdmin

from governance import duties, selectors
from governance.errors import Refused
from governance.models import Team


# --- Who may do what: duties held now, read once per request ---------------------------------------


def per_request(request, name: str, compute):
    """Memoise ``compute()`` on the request: the admin asks the same permission and visibility
    questions many times while rendering one page, and each answer costs a query."""
    attribute = f"_countersign_{name}"
    if not hasattr(request, attribute):
        setattr(request, attribute, compute())
    return getattr(request, attribute)


def held_duties(request) -> list[tuple[str, int | None, int]]:
    """(duty, environment id, team id) the user holds now, read in one query."""
    return per_request(request, "duties", lambda: selectors.effective_duties(request.user))


def holds_duty(request, duty: str, *, team: Team | None = None) -> bool:
    return any(held == duty and (team is None or team_id == team.pk) for held, _, team_id in held_duties(request))


def may_manage_roles(request, team: Team | None = None) -> bool:
    return request.user.is_superuser or holds_duty(request, duties.MANAGE_ROLES, team=team)


def is_security(request) -> bool:
    return holds_duty(request, duties.SECURITY_APPROVE)


def sees_all_assignments(request) -> bool:
    """Mirrors ``selectors.sees_all_assignments`` from the memoised duties (V2)."""
    return request.user.is_superuser or is_security(request) or holds_duty(request, duties.VIEW_AUDIT)


def is_governance_staff(request) -> bool:
    """Staff who have business in the governance admin: role managers, security, audit viewers."""
    user = request.user
    return user.is_active and user.is_staff and (sees_all_assignments(request) or may_manage_roles(request))


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


class ServiceOnlyAdmin(SimpleHistoryAdmin):
    """History without revert, and no deletion: every write goes through a service, and
    simple-history's revert form would save a past version directly."""

    def has_module_permission(self, request):
        return is_governance_staff(request)

    def has_view_permission(self, request, obj=None):
        return is_governance_staff(request)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        raise PermissionDenied

    def delete_queryset(self, request, queryset):
        raise PermissionDenied

    def revert_disabled(self, request, obj=None):
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)
