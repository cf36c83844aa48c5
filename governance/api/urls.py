from django.urls import include, path
from rest_framework.routers import DefaultRouter

from governance.api import control_changes, views

# No format-suffix routes (``teams.json``): the API speaks JSON only, the other routers under
# /api/v1/ add none, and the suffixed copies of the grant actions answered 500 (fuzzing found it).
class Router(DefaultRouter):
    include_format_suffixes = False


router = Router()
router.register("teams", views.TeamViewSet, basename="team")
router.register("environments", views.EnvironmentViewSet, basename="environment")
router.register("roles", views.RoleViewSet, basename="role")
router.register("role-assignments", views.RoleAssignmentViewSet, basename="role-assignment")
router.register("control-changes", control_changes.ControlChangeViewSet, basename="control-change")

urlpatterns = [path("", include(router.urls))]
