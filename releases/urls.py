from django.urls import path

from governance.access_reviews import views as governance_views
from releases import views

app_name = "releases"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("changes/<int:pk>/", views.change_request_detail, name="change_request"),
    path("changes/<int:pk>/signoff/", views.change_request_signoff, name="signoff"),
    path("changes/<int:pk>/deployments/", views.deployment_start, name="deployment_start"),
    path("changes/<int:pk>/review/", views.change_request_review, name="review"),
    path("deployments/<int:pk>/finish/", views.deployment_finish, name="deployment_finish"),
    path("deployments/<int:pk>/rollback/", views.deployment_rollback, name="deployment_rollback"),
    path("access-reviews/", governance_views.access_reviews, name="access_reviews"),
    path("access-reviews/items/<int:pk>/decide/", governance_views.access_review_item_decide,
         name="access_review_decide"),
]
