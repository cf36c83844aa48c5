from django.urls import path

from identity import sso

app_name = "identity"
urlpatterns = [
    path("sso/signoff/<int:pk>/", sso.signoff_start, name="signoff_start"),
    path("sso/signoff/callback/", sso.signoff_callback, name="signoff_callback"),
]
