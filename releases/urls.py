from django.urls import path

from releases import views

app_name = "releases"
urlpatterns = [path("", views.dashboard, name="dashboard")]
