"""The developer's portal (issue 18): create, edit, submit, withdraw and resubmit a change request,
send one whose approvals expired back for review, retry a failed deployment, and the list of
every change the user may see. The same services as the API; nothing here decides a rule.

A refusal re-renders the page that asked with every reason (403, 409), bad input re-renders the
form with its errors on the fields (400)."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.errors import Reason, Refused
from governance import duties
from governance.models import Team
from governance.selectors import effective_duties
from releases import selectors, services, services_flow, states
from releases.filters import ChangeRequestListFilter
from releases.forms import ChangeRequestCreateForm, ChangeRequestEditForm, DeploymentStartForm
from releases.models import ChangeRequest
from releases.views import Refusal, _change_page, _refusal, _visible_or_404
from releases.views_inbox import inbox_page

LIST_ROWS = 25


def _form_page(request, form, *, cr=None, refusal=None, status=200):
    """The change form; with errors, the first field in error takes the focus (``autofocus``: no
    script needed) and the summary above links to each."""
    first = next((name for name in form.fields if name in form.errors), None)
    if first is not None:
        form.fields[first].widget.attrs["autofocus"] = True
    context = {"form": form, "cr": cr, "refusal": refusal,
               "under_review": cr is not None and states.allows("new_revision", cr.state)}
    return render(request, "releases/change_form.html", context, status=status)


def _service_refused(request, form, refused: Refused, title: str, cr=None):
    return _form_page(request, form, cr=cr, refusal=_refusal(title, refused), status=refused.status_code)


@login_required
def change_request_new(request):
    """A new draft, by a member of the team who holds submit on the environment (C1)."""
    user, at = request.user, timezone.now()
    teams = Team.objects.filter(memberships__user=user).order_by("name")
    if request.method != "POST":
        return _form_page(request, ChangeRequestCreateForm(teams=teams))
    form = ChangeRequestCreateForm(request.POST, teams=teams)
    if not form.is_valid():
        return _form_page(request, form, status=400)
    data = dict(form.cleaned_data)
    try:
        cr = services.change_request_create(actor=user, **data, at=at)
    except Refused as refused:
        return _service_refused(request, form, refused, "You cannot open this change request")
    except ValidationError as error:
        form.add_service_errors(error)
        return _form_page(request, form, status=400)
    messages.success(request, f"Draft CR-{cr.pk} saved. Check the policy checklist, then submit it for review.")
    return redirect("releases:change_request", pk=cr.pk)


@login_required
def change_request_edit(request, pk: int):
    """The author edits a draft, a pending change or one sent back for changes; under review an
    edit of what reviewers read is a new revision (C3)."""
    user, at = request.user, timezone.now()
    cr = _visible_or_404(user, pk, at)
    if request.method != "POST":
        form = ChangeRequestEditForm(initial=ChangeRequestEditForm.initial_for(cr))
        if user.pk != cr.author_id:  # the service's answer to anyone else, before they type anything
            refusal = Refusal("You cannot edit this change request",
                              [Reason("not_author", "Only the author edits a change request.")], 403)
            return _form_page(request, form, cr=cr, refusal=refusal, status=403)
        return _form_page(request, form, cr=cr)
    form = ChangeRequestEditForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, cr=cr, status=400)
    try:
        updated = services.change_request_update(actor=user, change_request=cr, changes=form.cleaned_data, at=at)
    except Refused as refused:
        return _service_refused(request, form, refused, "You cannot edit this change request", cr=cr)
    except ValidationError as error:
        form.add_service_errors(error)
        return _form_page(request, form, cr=cr, status=400)
    if updated.revision != cr.revision:
        messages.success(request, f"CR-{cr.pk} is now at revision {updated.revision}; earlier decisions no longer "
                                  "count.")
    else:
        messages.success(request, f"CR-{cr.pk} saved.")
    return redirect("releases:change_request", pk=cr.pk)


def _act(request, pk: int, call, title: str, done):
    """POST an action on the change page's panel: the service, then back to the change page."""
    user, at = request.user, timezone.now()
    cr = _visible_or_404(user, pk, at)
    try:
        updated = call(user, cr, at)
    except Refused as refused:
        return _change_page(request, cr, at, refusal=_refusal(title, refused), status=refused.status_code)
    except ValidationError as error:
        reasons = [Reason("invalid", message) for texts in error.message_dict.values() for message in texts]
        return _change_page(request, cr, at, refusal=Refusal(title, reasons, 400), status=400)
    messages.success(request, done(updated))
    return redirect("releases:change_request", pk=cr.pk)


def _text(request, name: str) -> str:
    return (request.POST.get(name) or "")[:4000]


@login_required
@require_POST
def change_request_submit(request, pk: int):
    def done(cr):
        if states.is_approved(cr.state):
            return f"CR-{cr.pk} submitted; its policy is already met and it is approved."
        return f"CR-{cr.pk} submitted for review (revision {cr.revision})."

    return _act(request, pk, lambda user, cr, at: services.change_request_submit(actor=user, change_request=cr, at=at),
                "Submission refused", done)


@login_required
@require_POST
def change_request_withdraw(request, pk: int):
    return _act(request, pk, lambda user, cr, at: services_flow.change_request_withdraw(
        actor=user, change_request=cr, reason=_text(request, "reason"), at=at),
        "Withdrawal refused", lambda cr: f"CR-{cr.pk} is a draft again; submit it when it is ready.")


@login_required
@require_POST
def change_request_re_review(request, pk: int):
    return _act(request, pk, lambda user, cr, at: services_flow.change_request_re_review(
        actor=user, change_request=cr, comment=_text(request, "comment"), at=at),
        "Not sent back for review", lambda cr: f"CR-{cr.pk} is pending again at revision {cr.revision}.")


@login_required
@require_POST
def deployment_retry(request, pk: int):
    user, at = request.user, timezone.now()
    cr = _visible_or_404(user, pk, at)
    form = DeploymentStartForm(request.POST, prefix="retry")
    if not form.is_valid():
        return _change_page(request, cr, at, retry_form=form, status=400)
    try:
        deployment = services.deployment_retry(actor=user, change_request=cr,
                                               pipeline_url=form.cleaned_data["pipeline_url"], at=at)
    except Refused as refused:
        return _change_page(request, cr, at, refusal=_refusal("Retry refused", refused), status=refused.status_code)
    except ValidationError as error:
        form.add_service_errors(error)
        return _change_page(request, cr, at, retry_form=form, status=400)
    messages.success(request, f"Deployment #{deployment.pk} of CR-{cr.pk} started: a new attempt. "
                              "Report its outcome below.")
    return redirect("releases:change_request", pk=cr.pk)


@login_required
def change_request_list(request):
    """Every change the user may see (V1), searchable by title or id and filtered by state,
    environment and team (django-filter), 25 a page."""
    user, at = request.user, timezone.now()
    visible = selectors.change_requests_visible_to(user, at=at).select_related("environment", "team", "author")
    filters = ChangeRequestListFilter(request.GET, queryset=visible, request=request)
    rows = filters.qs if filters.is_valid() else ChangeRequest.objects.none()
    page = Paginator(rows, LIST_ROWS).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    can_create = any(duty == duties.SUBMIT for duty, _, _ in effective_duties(user, at=at))
    context = {"filters": filters, "page": page, "query": query.urlencode(), "can_create": can_create, "now": at}
    return render(request, "releases/change_list.html", context, status=200 if filters.is_valid() else 400)


@login_required
def inbox(request):
    """What is waiting on the user ("waiting on you"): ``releases.inbox``, the same answer as the
    count in the top bar."""
    return inbox_page(request)
