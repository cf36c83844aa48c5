from django.urls import path

from governance.access_reviews import views as governance_views
from releases import views, views_author, views_inbox

app_name = "releases"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("inbox/", views_author.inbox, name="inbox"),
    path("inbox/grants/<int:pk>/decide/", views_inbox.grant_decide, name="inbox_grant_decide"),
    path("changes/", views_author.change_request_list, name="change_requests"),
    path("changes/new/", views_author.change_request_new, name="change_request_new"),
    path("changes/<int:pk>/", views.change_request_detail, name="change_request"),
    path("changes/<int:pk>/edit/", views_author.change_request_edit, name="change_request_edit"),
    path("changes/<int:pk>/submit/", views_author.change_request_submit, name="change_request_submit"),
    path("changes/<int:pk>/withdraw/", views_author.change_request_withdraw, name="change_request_withdraw"),
    path("changes/<int:pk>/re-review/", views_author.change_request_re_review, name="change_request_re_review"),
    path("changes/<int:pk>/retry/", views_author.deployment_retry, name="deployment_retry"),
    path("changes/<int:pk>/signoff/", views.change_request_signoff, name="signoff"),
    path("changes/<int:pk>/deployments/", views.deployment_start, name="deployment_start"),
    path("changes/<int:pk>/review/", views.change_request_review, name="review"),
    path("deployments/<int:pk>/finish/", views.deployment_finish, name="deployment_finish"),
    path("deployments/<int:pk>/rollback/", views.deployment_rollback, name="deployment_rollback"),
    path("access-reviews/", governance_views.access_reviews, name="access_reviews"),
    path("access-reviews/items/decide/", governance_views.access_review_items_decide, name="access_review_bulk"),
    path("access-reviews/items/<int:pk>/decide/", governance_views.access_review_item_decide,
         name="access_review_decide"),
]
