"""The portal's access-review page (RULES.md A1–A3): a manager's (or security's) queue of grants
to keep or revoke, with the campaign's recommendations, and what was decided.

Reads go through ``governance.access_reviews.visibility`` (an item the user may not see is a 404), each
decision through ``services.access_review_item_decide``, and a refusal is rendered with its reason
codes: 403 for a rule, 409 for an item already decided or a closed campaign, 400 for bad input.
No page needs JavaScript. Routed from ``releases/urls.py``, the portal's URLconf.
"""
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from governance import services
from core.errors import Reason, Refused
from governance.access_reviews.forms import ReviewDecisionForm
from governance.models import AccessReviewItem
from governance.access_reviews.visibility import (
    review_items_awaiting,
    review_items_decided_in_scope,
    review_items_visible_to,
)
from core.english import possessive

AWAITING_ROWS = 50
DECIDED_ROWS = 25
ITEM_RELATIONS = [
    "review__team", "assignment__user", "assignment__role", "assignment__team", "assignment__environment",
    "reviewer", "decided_by",
]


@dataclass(frozen=True)
class Refusal:
    """What the service said no to, shown above the queue."""

    title: str
    reasons: list[Reason]
    status: int


def _form_for(item_pk: int, data=None) -> ReviewDecisionForm:
    return ReviewDecisionForm(data, auto_id=f"id_item{item_pk}_%s")


def _describe(item: AccessReviewItem) -> str:
    grant = item.assignment
    where = grant.environment.name if grant.environment_id else "all environments"
    return f"{possessive(grant.user.username)} {grant.role.name} grant in {grant.team.name} ({where})"


def _page(request, at, *, refusal: Refusal | None = None, failed: tuple[int, ReviewDecisionForm] | None = None,
          status: int = 200):
    user = request.user
    awaiting = list(
        review_items_awaiting(user, at=at).select_related(*ITEM_RELATIONS).order_by("due_at", "pk")[: AWAITING_ROWS + 1]
    )
    awaiting, awaiting_more = awaiting[:AWAITING_ROWS], len(awaiting) > AWAITING_ROWS
    for item in awaiting:
        item.form = failed[1] if failed and failed[0] == item.pk else _form_for(item.pk)
    decided = list(review_items_decided_in_scope(user, at=at).select_related(*ITEM_RELATIONS)[:DECIDED_ROWS])
    context = {
        "awaiting": awaiting,
        "awaiting_more": awaiting_more,
        "decided": decided,
        "refusal": refusal,
        "now": at,
    }
    return render(request, "governance/access_reviews.html", context, status=status)


@login_required
def access_reviews(request):
    return _page(request, timezone.now())


@login_required
@require_POST
def access_review_item_decide(request, pk: int):
    user, at = request.user, timezone.now()
    item = review_items_visible_to(user, at=at).select_related(*ITEM_RELATIONS).filter(pk=pk).first()
    if item is None:
        raise Http404("No review item found.")
    form = _form_for(item.pk, request.POST)
    if not form.is_valid():
        return _page(request, at, failed=(item.pk, form), status=400)
    decision = form.cleaned_data["decision"]
    try:
        services.access_review_item_decide(
            actor=user, item=item, decision=decision, comment=form.cleaned_data["comment"], at=at
        )
    except Refused as refused:
        title = f"Not decided: {_describe(item)}"
        return _page(request, at, refusal=Refusal(title, refused.reasons, refused.status_code),
                     failed=(item.pk, form), status=refused.status_code)
    except ValidationError as error:
        form.add_service_errors(error)
        return _page(request, at, failed=(item.pk, form), status=400)
    if decision == AccessReviewItem.Decision.REVOKE:
        messages.success(request, f"You revoked {_describe(item)}; it ended at once.")
    else:
        messages.success(request, f"You kept {_describe(item)}.")
    return redirect("releases:access_reviews")
