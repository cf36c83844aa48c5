from django.urls import include, path
from rest_framework.routers import DefaultRouter

from governance.api import views

router = DefaultRouter()
router.register("teams", views.TeamViewSet, basename="team")
router.register("environments", views.EnvironmentViewSet, basename="environment")
router.register("roles", views.RoleViewSet, basename="role")
router.register("role-assignments", views.RoleAssignmentViewSet, basename="role-assignment")

urlpatterns = [path("", include(router.urls))]
