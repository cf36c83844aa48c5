"""Brute-force lockout (django-axes) for the login page and the sign-off password.

Both count failures in the same place (axes' database records, shared by every web worker), so
five wrong passwords for one username lock both the login and the sign-off until the cool-off has
passed. The first failure that locks a username raises one ``login_lockout`` alert and writes one
audit event. What the client sees never depends on whether the username exists.
"""
from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest
from django.shortcuts import render

import audit
from audit.alerts import raise_alert
from audit.models import Alert

ALERT_KIND = "login_lockout"


class LockoutBackend(AxesStandaloneBackend):
    """axes' backend, also for callers that pass no request (Django's test ``Client.login``, a
    shell): they have no client address, but a locked username is still refused."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        return super().authenticate(request if request is not None else HttpRequest(),
                                    username=username, password=password, **kwargs)


def lockout_response(request, original_response=None, credentials=None):
    """The page every locked-out attempt gets: the same for any username, existing or not."""
    cool_off = get_cool_off(request)
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    response = render(request, "registration/locked_out.html", {"minutes": minutes},
                      status=settings.AXES_HTTP_RESPONSE_CODE)
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response


def signoff_allowed(request, user) -> bool:
    """False while the user's username is locked out: the sign-off does not even check the password."""
    return AxesProxyHandler.is_allowed(request, {"username": user.get_username()})


def signoff_password_failed(request, user) -> bool:
    """Count a wrong sign-off password like a failed login. True when this failure locked the user."""
    AxesProxyHandler.user_login_failed(sender=__name__, credentials={"username": user.get_username()},
                                       request=request)
    return bool(getattr(request, "axes_locked_out", False))


@receiver(user_locked_out)
def alert_on_lockout(sender, request, username, ip_address, **kwargs):
    """One alert (deduplicated per username while open) and one audit event per new lockout.

    axes sends this signal again for every attempt refused during a lockout (each one pushes the
    cool-off further); those carry a failure count above the limit and are not recorded again."""
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is not None and failures > settings.AXES_FAILURE_LIMIT:
        return
    where = "sign-off" if "/signoff/" in getattr(request, "path", "") else "login"
    subject_user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    details = {"username": username, "ip_address": ip_address, "where": where, "failures": failures}
    with transaction.atomic():
        raise_alert(
            ALERT_KIND,
            subject=f"Sign-in locked after repeated wrong passwords: {username}",
            severity=Alert.Severity.HIGH,
            details=details,
            actor=subject_user,
            dedupe_key=f"{ALERT_KIND}:{username}"[:200],
        )
        audit.record("auth.locked_out", actor=None, target=subject_user, data=details)
