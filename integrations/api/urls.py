from django.urls import path

from integrations.api import views, webhooks

urlpatterns = [
    path("change-requests/<str:pk>/attestation/", views.ChangeRequestSourceViewSet.as_view({"get": "attestation"}),
         name="change-request-attestation"),
    path("change-requests/<str:pk>/source-links/", views.ChangeRequestSourceViewSet.as_view({"post": "source_links"}),
         name="change-request-source-links"),
    path("change-requests/<str:pk>/source-contributors/",
         views.ChangeRequestSourceViewSet.as_view({"get": "source_contributors"}),
         name="change-request-source-contributors"),
    path("integrations/github/webhook", webhooks.GitHubWebhookView.as_view(), name="github-webhook"),
    path("integrations/gitlab/webhook", webhooks.GitLabWebhookView.as_view(), name="gitlab-webhook"),
]
