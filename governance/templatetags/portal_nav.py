"""The top bar's duty-dependent links (templates/base.html), decided from the duties the user holds
now: two queries at most per page, whatever the page lists."""
from django import template

from governance import duties
from governance.models import AccessReviewItem
from governance.selectors import effective_duties

register = template.Library()

REVIEWING_DUTIES = {duties.MANAGE_ROLES, duties.REVIEW_ACCESS, duties.SECURITY_APPROVE}
ALERT_READING_DUTIES = {duties.SECURITY_APPROVE, duties.VIEW_AUDIT}


@register.simple_tag(takes_context=True)
def portal_links(context) -> dict[str, bool]:
    """``access_reviews``: the user reviews access (a team's manager or reviewer, security) or is
    the reviewer of an item. ``alerts``: staff who may read alerts in the admin (V3).
    ``evidence``: holders of export_evidence, the only users the evidence page exists for (V3).
    ``new_change``: holders of submit, who may open a change request (C1)."""
    user = context.get("user")
    if user is None or not user.is_authenticated:
        return {"access_reviews": False, "alerts": False, "evidence": False, "new_change": False}
    held = {duty for duty, _, _ in effective_duties(user)}
    reviews = bool(held & REVIEWING_DUTIES) or AccessReviewItem.objects.filter(reviewer_id=user.pk).exists()
    return {
        "access_reviews": reviews,
        "alerts": user.is_staff and (user.is_superuser or bool(held & ALERT_READING_DUTIES)),
        "evidence": duties.EXPORT_EVIDENCE in held,
        "new_change": duties.SUBMIT in held,  # opens change requests somewhere (C1)
    }
