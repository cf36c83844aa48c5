"""Triaging an alert from the inbox (issue 18): resolve it with what was found and done, through
``compliance.alerts.alert_resolve`` (security_approve; nobody resolves an alert about their own
action, ``own_alert``; an alert already resolved is 409). Lives here, not in releases, because the
alert service sits in compliance (docs/architecture.md, the layers); the page it re-renders is the
inbox's own (``releases.views_inbox.inbox_page``), with the refusal at the top.

Alerts are read by holders of view_audit or security_approve (RULES.md V3): anyone else gets 404."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.models import Alert
from compliance import alerts as services
from governance import duties
from governance.selectors import has_duty
from releases.views import Refusal
from releases.views_inbox import alert_form, decided_or_refused, field_reasons, inbox_page


def _reads_alerts(user) -> bool:
    return user.is_superuser or has_duty(user, duties.SECURITY_APPROVE) or has_duty(user, duties.VIEW_AUDIT)


@login_required
@require_POST
def alert_resolve(request, pk: int):
    user, at = request.user, timezone.now()
    alert = Alert.objects.filter(pk=pk).first() if _reads_alerts(user) else None
    if alert is None:
        raise Http404("No alert found.")
    form = alert_form(alert.pk, request.POST)
    title = f"Not resolved: {alert.subject}"
    if not form.is_valid():
        return inbox_page(request, refusal=Refusal(title, field_reasons(form), 400), failed=("alert", alert.pk, form),
                          status=400)
    refused = decided_or_refused(request, title, ("alert", alert.pk, form), lambda: services.alert_resolve(
        actor=user, alert=alert, resolution=form.cleaned_data["resolution"], at=at))
    if refused is not None:
        return refused
    messages.success(request, f"You resolved the alert “{alert.subject}”.")
    return redirect("releases:inbox")
