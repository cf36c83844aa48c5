"""Queries per request at one data scale, measured in-process with the test client (the served
numbers come from gunicorn; this only counts). ``bench/run.py`` compares the counts across scales:
the target is the same count at every size."""
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve, reverse

API_LISTS = ("change-requests", "deployments", "role-assignments", "teams", "environments", "roles",
             "access-reviews", "access-review-items", "audit-events", "alerts", "control-changes",
             "deployment-reconciliation", "audit/checkpoints", "evidence-exports")
DETAILS = {"change-requests": "id", "deployments": "id", "role-assignments": "id", "teams": "slug",
           "environments": "slug", "roles": "slug", "access-reviews": "id", "alerts": "id"}  # the detail URL's field


def _count(client: Client, url: str, **headers) -> int:
    """Queries of the second request (negative: the HTTP status when the answer is not 200)."""
    client.get(url, **headers)  # warm: first use of a key writes last_used_at, caches fill
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    return len(captured) if response.status_code == 200 else -response.status_code


def measure(users: dict, tokens: dict, change_id: int) -> dict:
    """``users`` by role (rev, ops, auditor, sec, admin); ``tokens`` API keys by role."""
    counts = {}
    ops = {"HTTP_AUTHORIZATION": f"Token {tokens['ops']}"}
    counts["gate"] = _count(Client(), f"/api/v1/change-requests/{change_id}/gate/?action=deploy", **ops)
    rev = Client()
    rev.force_login(users["rev"])
    counts["dashboard"] = _count(rev, "/")
    counts["change request page"] = _count(rev, f"/changes/{change_id}/")
    counts["inbox"] = _count(rev, "/inbox/")
    counts["all changes"] = _count(rev, "/changes/")
    for name in API_LISTS:
        try:
            resolve(f"/api/v1/{name}/")
        except Resolver404:  # not served (yet): nothing to count
            continue
        who = "sec" if name == "alerts" else "auditor"
        key = {"HTTP_AUTHORIZATION": f"Token {tokens[who]}"}
        counts[f"api {name}/"] = _count(Client(), f"/api/v1/{name}/", **key)
        if name in DETAILS:  # the first row the list shows, as its detail
            rows = Client().get(f"/api/v1/{name}/", **key).json()["results"]
            if rows:
                counts[f"api {name}/{{{DETAILS[name]}}}/"] = _count(
                    Client(), f"/api/v1/{name}/{rows[0][DETAILS[name]]}/", **key)
    superuser = Client()
    superuser.force_login(users["admin"])
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        counts[f"admin {model._meta.label_lower}"] = _count(superuser, url)
    return counts
