"""Floors for ``make bench``: the cheapest thing the same server can do for each benchmarked
request, served by the same gunicorn with the same middleware and authentication, so the ratio
shows what Countersign's own work costs and nothing else.

Mounted only when ``settings.COUNTERSIGN_BENCH_ENDPOINTS`` is on (environment, default off; the
bench turns it on for its own gunicorn). Nothing here is reachable in a deployment.
"""
import json
import secrets
from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.contrib.sessions.models import Session
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.models import Membership
from releases.models import ChangeRequest
from releases.views import DASHBOARD_ROWS, RECENT_ROWS

# The dashboard shows at most two lists of DASHBOARD_ROWS and one of RECENT_ROWS change requests.
DASHBOARD_FLOOR_ROWS = 2 * DASHBOARD_ROWS + RECENT_ROWS
ROW_FIELDS = ("id", "title", "state", "revision", "artifact", "team_id", "environment_id", "author_id")


class RowByPk(APIView):
    """Gate floor: one change request row by primary key, as JSON, behind the API's own
    authentication (token or session) and ``IsAuthenticated``. No visibility rule, no policy."""

    def get(self, request, pk: int):
        row = ChangeRequest.objects.filter(pk=pk).values(*ROW_FIELDS).first()
        if row is None:
            raise Http404
        return Response(row)


class InsertRow(APIView):
    """Write floor: one INSERT into ``django_session`` (Django's own table: a key, a blob and a
    date, no foreign key, no trigger, no history), behind the API's authentication. The rows
    carry an expiry in the past, so ``clearsessions`` (and the bench) remove them."""

    def post(self, request):
        Session.objects.create(
            session_key="bench" + secrets.token_hex(16),
            session_data="",
            expire_date=timezone.now() - timedelta(days=1),
        )
        return Response({"ok": True}, status=201)


class StoreBody(APIView):
    """Webhook floor (bench/integrations.py): what the GitHub webhook does over HTTP and JSON and
    nothing of Countersign's: the same view class, unauthenticated and unthrottled, the raw body
    read and parsed (a JSON object, else 400), stored as it came in one INSERT into
    ``django_session`` (as ``InsertRow``), and the same 202 answer. No signature, no repository,
    no delivery row, no outbox."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()

    def post(self, request):
        body = request._request.body
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            return Response({"detail": "The body is not a JSON object."}, status=400)
        Session.objects.create(session_key="bench" + secrets.token_hex(16), session_data=body.decode(),
                               expire_date=timezone.now() - timedelta(days=1))
        return Response({"delivery": request.headers.get("X-GitHub-Delivery", ""), "duplicate": False}, status=202)


@login_required
def dashboard_floor(request):
    """Dashboard floor: the same number of change request rows with the same columns, newest
    first, from one query, in the same base template. The user's team ids are read first and
    given as a list (as ``releases.selectors`` does): behind a subquery PostgreSQL reads and sorts
    every change of the team, which would make the floor slower than the page at ``large``."""
    team_ids = list(Membership.objects.filter(user_id=request.user.pk).values_list("team_id", flat=True))
    rows = list(
        ChangeRequest.objects.filter(team_id__in=team_ids)
        .select_related("team", "environment", "author")
        .order_by("-created_at", "-id")[:DASHBOARD_FLOOR_ROWS]
    )
    return render(request, "bench/dashboard.html", {"rows": rows, "now": timezone.now()})


@login_required
def change_request_floor(request, pk: int):
    """Change request page floor: the change with its team, environment and author from one query,
    in the same base template, without policy, approvals or history."""
    cr = ChangeRequest.objects.select_related("team", "environment", "author").filter(pk=pk).first()
    if cr is None:
        raise Http404
    return render(request, "bench/change_request.html", {"cr": cr})
