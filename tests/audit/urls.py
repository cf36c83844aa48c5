"""A one-view URLconf for driving the real middleware stack in test_request_context.py."""
from django.http import HttpResponse
from django.urls import path

import audit


def record_view(request):
    audit.record("test.viewed", data={"path": request.path})
    return HttpResponse("recorded")


urlpatterns = [path("record/", record_view)]
