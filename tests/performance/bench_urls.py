"""The project's URLs with the bench's floors mounted, as ``COUNTERSIGN_BENCH_ENDPOINTS=1`` does."""
from django.urls import include, path

from config.urls import handler404, urlpatterns as project  # noqa: F401 (handler404 is read by Django)

urlpatterns = [path("bench/", include("bench.urls")), *project]
