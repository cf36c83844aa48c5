from django.urls import path, re_path

from identity import scim

urlpatterns = [
    path(".search", scim.search_everything),
    path("ServiceProviderConfig", scim.service_provider_config),
    path("Schemas", scim.schemas),
    path("Schemas/<str:schema_id>", scim.schemas),
    path("ResourceTypes", scim.resource_types),
    path("ResourceTypes/<str:type_id>", scim.resource_types),
    path("Users", scim.users),
    path("Users/.search", scim.users_search),
    path("Users/<str:pk>", scim.user_detail),
    path("Groups", scim.groups),
    path("Groups/.search", scim.groups_search),
    path("Groups/<str:pk>", scim.group_detail),
    re_path(r"^(?P<rest>.*)$", scim.not_found),
]
