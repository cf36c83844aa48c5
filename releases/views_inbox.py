"""The inbox's page and its decisions on pending privileged grants (issue 18): approve or reject
one from where it waits, through ``governance.services`` (G4's four eyes, conflicts checked again,
the requester withdraws but never approves). ``inbox_page`` also renders the other apps' decisions
made from the inbox (compliance's alerts, ``compliance.inbox_views``), with their refusal at the top
(``releases/_refusal_focus.html``: it takes the focus) and the form that failed still filled in.

Approving a grant asks for no password again: the admin and the API approve the same way (only a
change's sign-off re-authenticates, releases.views and identity.sso). A grant the user may not see
is a 404; a rule says 403 with its reason codes, a grant already decided 409, bad input 400."""
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.english import possessive
from core.errors import Reason, Refused
from core.memo import per_request
from governance import duties
from governance import services as governance
from governance.selectors import assignments_visible_to, has_duty
from releases.inbox import waiting_on
from releases.views import Refusal

APPROVE, REJECT = "approve", "reject"


class GrantDecisionForm(forms.Form):
    """G4 from the inbox: the button pressed says approve or reject; a reason goes with a rejection
    (optional, as the service has it) and is recorded."""

    decision = forms.ChoiceField(choices=[(APPROVE, "Approve"), (REJECT, "Reject")])
    reason = forms.CharField(required=False, max_length=1000, label="Reason, if you reject",
                             widget=forms.TextInput())


class AlertResolveForm(forms.Form):
    """E2 from the inbox: what was found and done; posted to ``compliance.inbox_views`` (the alert
    service lives above releases), shown here so the inbox renders every decision it offers."""

    resolution = forms.CharField(max_length=4000, label="What was found and done",
                                 widget=forms.Textarea(attrs={"rows": 2}),
                                 error_messages={"required": "Say what was found and done."})


def grant_form(pk: int, data=None) -> GrantDecisionForm:
    return GrantDecisionForm(data, auto_id=f"id_grant{pk}_%s")


def alert_form(pk: int, data=None) -> AlertResolveForm:
    return AlertResolveForm(data, auto_id=f"id_alert{pk}_%s")


def describe_grant(grant) -> str:
    where = grant.environment.name if grant.environment_id else "all environments"
    return f"{possessive(grant.user.username)} {grant.role.name} grant in {grant.team.name} ({where})"


def field_reasons(form) -> list[Reason]:
    """A form's errors as the lines of the refusal shown at the top of the page."""
    return [Reason("invalid", f"{form[name].label if name in form.fields else 'Form'}: {message}")
            for name, errors in form.errors.items() for message in errors]


def inbox_page(request, *, refusal: Refusal | None = None, failed: tuple | None = None, status: int = 200):
    """The inbox with a form per decision; ``failed`` = (kind, pk, bound form) re-shows the one
    that was refused."""
    user = request.user
    waiting = per_request(request, "inbox", lambda: waiting_on(user))
    for grant in waiting.grants:
        grant.form = failed[2] if failed and failed[:2] == ("grant", grant.pk) else grant_form(grant.pk)
    may_resolve = bool(waiting.alerts) and has_duty(user, duties.SECURITY_APPROVE)
    if may_resolve:
        for alert in waiting.alerts:
            alert.form = failed[2] if failed and failed[:2] == ("alert", alert.pk) else alert_form(alert.pk)
    context = {"inbox": waiting, "now": timezone.now(), "refusal": refusal, "may_resolve": may_resolve}
    return render(request, "releases/inbox.html", context, status=status)


def decided_or_refused(request, title: str, failed: tuple, decide):
    """Run ``decide()``; None when it went through, else the inbox re-rendered with its refusal at the
    top (a rule's reasons and status, or the model's field errors on the form that failed, 400)."""
    form = failed[2]
    try:
        decide()
    except Refused as refused:
        return inbox_page(request, refusal=Refusal(title, refused.reasons, refused.status_code), failed=failed,
                          status=refused.status_code)
    except ValidationError as error:
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return inbox_page(request, refusal=Refusal(title, field_reasons(form), 400), failed=failed, status=400)
    return None


@login_required
@require_POST
def grant_decide(request, pk: int):
    user, at = request.user, timezone.now()
    grant = (assignments_visible_to(user, at=at).select_related("user", "role", "team", "environment")
             .filter(pk=pk).first())
    if grant is None:
        raise Http404("No grant found.")
    form = grant_form(grant.pk, request.POST)
    title = f"Not decided: {describe_grant(grant)}"
    if not form.is_valid():
        return inbox_page(request, refusal=Refusal(title, field_reasons(form), 400), failed=("grant", grant.pk, form),
                          status=400)
    decision = form.cleaned_data["decision"]
    if decision == APPROVE:
        refused = decided_or_refused(request, title, ("grant", grant.pk, form), lambda: governance.role_assignment_approve(
            actor=user, assignment=grant, at=at))
    else:
        refused = decided_or_refused(request, title, ("grant", grant.pk, form), lambda: governance.role_assignment_reject(
            actor=user, assignment=grant, reason=form.cleaned_data["reason"], at=at))
    if refused is not None:
        return refused
    if decision == APPROVE:
        messages.success(request, f"You approved {describe_grant(grant)}; it is in force now.")
    else:
        messages.success(request, f"You rejected {describe_grant(grant)}.")
    return redirect("releases:inbox")
