"""The top bar's inbox count (templates/base.html): how much is waiting on the user, read once per
request through ``releases.inbox`` (the inbox page reuses the same answer)."""
from django import template

from core.memo import per_request
from releases.inbox import waiting_on

register = template.Library()


@register.simple_tag(takes_context=True)
def inbox_count(context) -> int:
    request, user = context.get("request"), context.get("user")
    if request is None or user is None or not user.is_authenticated:
        return 0
    return per_request(request, "inbox", lambda: waiting_on(user)).count
