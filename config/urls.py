from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import healthz
from governance.account_views import OwnPasswordChangeView, ResetLinkConfirmView

# Our own pages (templates/4xx.html, 500.html), JSON under /api/; with DEBUG on too (config/errors.py).
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "core.api.not_found"
handler500 = "config.db_errors.server_error"  # a database outage answers 503 (config/db_errors.py)

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Before the admin's own: one's password is changed through the accounts service (K5).
    path("admin/password_change/", admin.site.admin_view(OwnPasswordChangeView.as_view())),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/reset/<uidb64>/<token>/", ResetLinkConfirmView.as_view(), name="password_reset_confirm"),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(
        template_name="registration/reset_link_complete.html"), name="password_reset_complete"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/", include("governance.api.urls")),
    path("api/v1/", include("releases.api.urls")),
    path("api/v1/", include("governance.access_reviews.api")),
    path("api/v1/", include("integrations.api.urls")),
    path("api/v1/", include("compliance.api.urls")),
    path("evidence/", include("compliance.urls")),
    path("scim/v2/", include("identity.urls")),
    path("", include("identity.sso_urls")),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("", include("compliance.inbox_urls")),
    path("", include("releases.urls")),
]
if settings.API_DOCS:  # Swagger UI, served from our own static files (drf-spectacular-sidecar); API_DOCS=0 turns it off
    urlpatterns.insert(0, path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"))
if settings.COUNTERSIGN_BENCH_ENDPOINTS:  # make bench only (bench/endpoints.py); off by default
    urlpatterns.insert(0, path("bench/", include("bench.urls")))
