"""Accounts in the admin (RULES.md K5): a client of ``governance.controls`` and ``governance.services.accounts``.

Superusers add and change accounts; making one staff or superuser, reactivating it, or changing its
username or e-mail waits for a second person. Nobody sets another person's password here: the
password page sends the owner a one-time reset link instead. Accounts are deactivated, never deleted
(the trail refers to them). Groups and hand-made permissions are not offered: duties come from role
assignments alone (``sync_permissions``).
"""
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from governance.services import accounts
from core.admin import ServiceOnlyAdmin, describe_invalid, describe_refusal, run_per_object
from governance.controls import services as controls
from governance.controls.admin import ControlForm, ControlledAdminMixin
from core.errors import Refused
from core.english import possessive

User = get_user_model()

if admin.site.is_registered(Group):
    admin.site.unregister(Group)  # Countersign grants nothing through groups
if admin.site.is_registered(User):
    admin.site.unregister(User)


class AccountAddForm(ControlForm):
    class Meta:
        model = User
        fields = ["username", "email", "first_name", "last_name", "is_staff", "is_superuser"]
        help_texts = {"email": "The owner receives a one-time link here to set their own password."}

    def clean_email(self):
        email = self.cleaned_data.get("email")
        if not email:
            raise ValidationError("A new account needs an e-mail address: its owner sets the password from there.")
        return email


class AccountChangeForm(ControlForm):
    class Meta:
        model = User
        fields = ["username", "email", "first_name", "last_name", "is_active", "is_staff", "is_superuser"]


@admin.register(User)
class AccountAdmin(ControlledAdminMixin, ServiceOnlyAdmin):
    control_kind = "auth.user"
    form = AccountChangeForm
    add_form = AccountAddForm
    actions = ["send_reset_link", "lift_lockout", "deactivate_selected"]
    # Fits 1280 px (issue 18): the name is on the page and in the search, not a column of its own.
    list_display = ["username", "email", "is_active", "is_staff", "is_superuser", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["username", "email", "first_name", "last_name"]
    ordering = ["username"]
    readonly_fields = ["password_state", "last_login", "date_joined"]

    def may_read(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return list(AccountAddForm.Meta.fields)
        return [*AccountChangeForm.Meta.fields, "password_state", "last_login", "date_joined"]

    @admin.display(description="Password")
    def password_state(self, user):
        url = reverse("admin:auth_user_password_change", args=[user.pk])
        state = "set" if user.has_usable_password() else "not set"
        return format_html('{} · <a href="{}">send a reset link</a>', state, url)

    def get_urls(self):
        return [
            path("<id>/password/", self.admin_site.admin_view(self.reset_link_view), name="auth_user_password_change"),
            *super().get_urls(),
        ]

    def reset_link_view(self, request, id):
        """Where Django's admin lets a superuser type someone's password, this page sends the owner
        a one-time link; for one's own account it leads to the password change form."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        user = get_object_or_404(User, pk=id)
        if user.pk == request.user.pk:
            return redirect("admin:password_change")
        if request.method == "POST":
            try:
                accounts.password_reset_issue(actor=request.user, user=user, reason=request.POST.get("reason", ""))
            except Refused as refusal:
                self.message_user(request, describe_refusal(refusal), messages.ERROR)
            except ValidationError as error:
                self.message_user(request, describe_invalid(error), messages.ERROR)
            else:
                self.message_user(request, f"A one-time reset link was sent to {possessive(user.get_username())} e-mail address.",
                                  messages.SUCCESS)
                return redirect("admin:auth_user_change", user.pk)
        context = {**self.admin_site.each_context(request), "title": f"Password of {user.get_username()}",
                   "account": user, "opts": self.opts}
        return TemplateResponse(request, "admin/auth/user/reset_link.html", context)

    @admin.action(description="Send a one-time password reset link to each owner")
    def send_reset_link(self, request, queryset):
        run_per_object(self, request, queryset, "sent a reset link",
                       lambda user: accounts.password_reset_issue(actor=request.user, user=user, reason="admin action"))

    @admin.action(description="Lift the brute-force lockout of selected accounts")
    def lift_lockout(self, request, queryset):
        run_per_object(self, request, queryset, "unlocked",
                       lambda user: accounts.lockout_reset(actor=request.user, user=user))

    @admin.action(description="Deactivate selected accounts")
    def deactivate_selected(self, request, queryset):
        run_per_object(self, request, queryset, "deactivated", lambda user: controls.control_change(
            actor=request.user, kind=self.control_kind, target=user, values={"is_active": False}))
