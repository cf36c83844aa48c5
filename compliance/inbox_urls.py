"""The inbox's decisions that compliance's services make (``compliance.inbox_views``), mounted at the
site's root by config/urls.py beside the portal's own (releases/urls.py)."""
from django.urls import path

from compliance import inbox_views

app_name = "inbox"
urlpatterns = [
    path("inbox/alerts/<int:pk>/resolve/", inbox_views.alert_resolve, name="alert_resolve"),
]
