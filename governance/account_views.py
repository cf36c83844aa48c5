"""Each person sets their own password (RULES.md K5), and that is recorded: the admin's "change
password" page for one's own account, and the page a one-time reset link opens."""
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.urls import reverse_lazy

from governance.services import accounts


class OwnPasswordChangeView(auth_views.PasswordChangeView):
    """The admin's "change password" page for one's own account, recorded on the trail."""

    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("admin:password_change_done")

    def get_context_data(self, **kwargs):
        from django.contrib import admin

        return {**admin.site.each_context(self.request), **super().get_context_data(**kwargs)}

    def form_valid(self, form):
        accounts.password_set_by_owner(user=self.request.user, password=form.cleaned_data["new_password1"],
                                       via="password change (current password confirmed)")
        self.request.user.refresh_from_db()
        update_session_auth_hash(self.request, self.request.user)
        return redirect(self.get_success_url())


class ResetLinkConfirmView(auth_views.PasswordResetConfirmView):
    """The page a one-time reset link opens: the owner sets their password, recorded on the trail."""

    template_name = "registration/reset_link_confirm.html"
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form):
        accounts.password_set_by_owner(user=self.user, password=form.cleaned_data["new_password1"], via="reset link")
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return redirect(self.get_success_url())
