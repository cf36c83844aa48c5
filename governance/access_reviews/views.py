"""The portal's access-review page (RULES.md A1–A3): a manager's (or security's) queue of grants
to keep or revoke, with the campaign's recommendations, and what was decided.

Reads go through ``governance.access_reviews.visibility`` (an item the user may not see is a 404), each
decision through ``services.access_review_item_decide``, and a refusal is rendered with its reason
codes: 403 for a rule, 409 for an item already decided or a closed campaign, 400 for bad input.
Many items are decided at once with one comment (``services.access_review_items_decide``, all or
nothing); revoking them asks for a confirmation first. When there is no open campaign, the page
says who starts one, how, and when the schedule next does (``campaign_start_help``).
No page needs JavaScript. Routed from ``releases/urls.py``, the portal's URLconf.
"""
from dataclasses import dataclass
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from governance import services
from core.errors import Reason, Refused
from governance import duties
from governance.access_reviews.forms import BulkDecisionForm, ReviewDecisionForm
from governance.access_reviews.services import item_label
from governance.models import AccessReview, AccessReviewItem
from governance.selectors import has_duty
from governance.access_reviews.visibility import (
    access_reviews_visible_to,
    review_items_awaiting,
    review_items_decided_in_scope,
    review_items_visible_to,
)

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
    return item_label(item)


START_TASK = "governance.tasks.start_access_review"


def next_scheduled_start(at):
    """When the beat schedule (config/schedule.py, as stored by ``sync_schedules`` and changed by
    admins since) next starts a campaign; None when no enabled schedule does."""
    from django_celery_beat.models import PeriodicTask

    task = (PeriodicTask.objects.filter(task=START_TASK, enabled=True)
            .select_related("crontab", "interval", "solar", "clocked").order_by("pk").first())
    if task is None:
        return None
    remaining = task.schedule.remaining_estimate(task.last_run_at or at)
    # The schedule measures from its own clock, read a moment (on a loaded machine, seconds) after
    # ``at``: to the nearest minute, which is what the page shows and a crontab's resolution.
    return max(at, (at + remaining + timedelta(seconds=30)).replace(second=0, microsecond=0))


def campaign_start_help(user, at) -> dict:
    """What the page says about starting a campaign: the open ones the user sees, whether they may
    start one themselves (``access_review_start``'s check, mirrored; the service decides) and the
    schedule's next run."""
    may_start = user.is_superuser or has_duty(user, duties.SECURITY_APPROVE, at=at) or has_duty(
        user, duties.REVIEW_ACCESS, at=at)
    return {
        "open_campaigns": list(access_reviews_visible_to(user, at=at).filter(status=AccessReview.Status.OPEN)
                               .select_related("team").order_by("due_at", "pk")[:5]),
        "may_start": may_start,
        "admin_start": may_start and user.is_staff,
        "next_start": next_scheduled_start(at),
    }


def _page(request, at, *, refusal: Refusal | None = None, failed: tuple[int, ReviewDecisionForm] | None = None,
          bulk: BulkDecisionForm | None = None, status: int = 200):
    user = request.user
    awaiting = list(
        review_items_awaiting(user, at=at).select_related(*ITEM_RELATIONS).order_by("due_at", "pk")[: AWAITING_ROWS + 1]
    )
    awaiting, awaiting_more = awaiting[:AWAITING_ROWS], len(awaiting) > AWAITING_ROWS
    chosen = {str(pk) for pk in (bulk.data.getlist("items") if bulk is not None and bulk.is_bound else [])}
    for item in awaiting:
        item.form = failed[1] if failed and failed[0] == item.pk else _form_for(item.pk)
        item.chosen, item.label = str(item.pk) in chosen, item_label(item)
    decided = list(review_items_decided_in_scope(user, at=at).select_related(*ITEM_RELATIONS)[:DECIDED_ROWS])
    context = {
        "awaiting": awaiting,
        "awaiting_more": awaiting_more,
        "decided": decided,
        "refusal": refusal,
        "bulk": bulk if bulk is not None else BulkDecisionForm(items=AccessReviewItem.objects.none()),
        "now": at,
        **campaign_start_help(user, at),
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


def _bulk_refused(request, at, bulk: BulkDecisionForm, title: str, reasons: list[Reason], status: int):
    return _page(request, at, refusal=Refusal(title, reasons, status), bulk=bulk, status=status)


@login_required
@require_POST
def access_review_items_decide(request):
    """Keep or revoke the chosen items with one comment. Revoking shows what will end and asks to
    confirm (a second POST with ``confirm``); nothing changes unless every item may be decided."""
    user, at = request.user, timezone.now()
    bulk = BulkDecisionForm(request.POST, items=review_items_visible_to(user, at=at).select_related(*ITEM_RELATIONS))
    if not bulk.is_valid():
        reasons = [Reason("invalid", message) for messages_ in bulk.errors.values() for message in messages_]
        return _bulk_refused(request, at, bulk, "Nothing was decided", reasons, 400)
    items, decision = list(bulk.cleaned_data["items"]), bulk.cleaned_data["decision"]
    comment = bulk.cleaned_data["comment"]
    if decision == AccessReviewItem.Decision.REVOKE and not bulk.cleaned_data["confirm"]:
        return render(request, "governance/access_reviews_confirm.html",
                      {"items": items, "comment": comment, "decision": decision, "now": at})
    try:
        services.access_review_items_decide(actor=user, items=items, decision=decision, comment=comment, at=at)
    except Refused as refused:
        return _bulk_refused(request, at, bulk, f"Nothing was decided: one of the {len(items)} grants chosen was refused"
                             if len(items) > 1 else "Nothing was decided", refused.reasons, refused.status_code)
    except ValidationError as error:
        reasons = [Reason("invalid", m) for messages_ in error.message_dict.values() for m in messages_]
        return _bulk_refused(request, at, bulk, "Nothing was decided", reasons, 400)
    count = f"{len(items)} grant{'s' if len(items) != 1 else ''}"
    if decision == AccessReviewItem.Decision.REVOKE:
        messages.success(request, f"You revoked {count}; they ended at once.")
    else:
        messages.success(request, f"You kept {count}.")
    return redirect("releases:access_reviews")
