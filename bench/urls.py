"""Floor endpoints for ``make bench`` (see bench/endpoints.py); included by config/urls.py only
when ``settings.COUNTERSIGN_BENCH_ENDPOINTS`` is on."""
from django.urls import path

from bench import endpoints

urlpatterns = [
    path("row/<int:pk>/", endpoints.RowByPk.as_view(), name="bench-row"),
    path("insert/", endpoints.InsertRow.as_view(), name="bench-insert"),
    path("webhook/", endpoints.StoreBody.as_view(), name="bench-webhook"),
    path("dashboard/", endpoints.dashboard_floor, name="bench-dashboard"),
    path("changes/<int:pk>/", endpoints.change_request_floor, name="bench-change-request"),
]
