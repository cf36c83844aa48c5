"""The portal's evidence pages (audit/views.py), mounted at ``/evidence/`` by config/urls.py."""
from django.urls import path

from compliance import views

app_name = "evidence"
urlpatterns = [
    path("", views.evidence_exports, name="exports"),
    path("<int:pk>/download/", views.evidence_export_download, name="download"),
]
