"""What the admin stories say often: an admin URL, a change form as a signed_in posts it, the last
audit event of a kind, the messages a page carries."""
from django.contrib.messages import get_messages
from django.forms.models import model_to_dict
from django.urls import reverse

from audit.models import AuditEvent


def admin_url(model, view: str, *args) -> str:
    """``admin_url(ChangeRequest, "change", cr.pk)`` → /admin/releases/changerequest/<pk>/change/."""
    return reverse(f"admin:releases_{model._meta.model_name}_{view}", args=args)


def posted(instance, **changes) -> dict:
    """The change form's POST data for ``instance`` as it stands, with ``changes`` applied: what a
    signed_in sends when someone edits those fields and presses Save."""
    data = {**model_to_dict(instance), **changes}
    data.pop("id", None)
    form = {}
    for name, value in data.items():
        if value is True:
            form[name] = "on"
        elif value is False:
            continue
        elif value is None:
            form[name] = ""
        else:
            form[name] = value
    return {**form, "_save": "Save"}


def last_event(action: str) -> AuditEvent | None:
    return AuditEvent.objects.filter(action=action).order_by("-sequence").first()


def page_messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]
