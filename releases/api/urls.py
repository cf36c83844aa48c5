from django.urls import include, path
from rest_framework.routers import SimpleRouter

from releases.api import views

# SimpleRouter: governance's DefaultRouter already serves the API root at the same prefix.
router = SimpleRouter()
router.register("change-requests", views.ChangeRequestViewSet, basename="change-request")
router.register("deployments", views.DeploymentViewSet, basename="deployment")

urlpatterns = [
    path("deployment-reports/", views.DeploymentReportView.as_view(), name="deployment-report"),
    path("", include(router.urls)),
]
