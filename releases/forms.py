"""The portal's forms. They check the shape of what was typed; the services decide the rest."""
from django import forms
from django.core.exceptions import ValidationError

from releases.models import Deployment

APPROVE, REJECT = "approve", "reject"


class ServiceErrorsMixin:
    """Puts a service's ``ValidationError`` on the fields it names, the rest above the form."""

    def add_service_errors(self, error: ValidationError) -> None:
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)


class SignoffForm(ServiceErrorsMixin, forms.Form):
    """C11: a decision on the revision the reviewer saw, signed by re-entering their password."""

    decision = forms.ChoiceField(
        choices=[(APPROVE, "Approve this revision"), (REJECT, "Reject the change request")],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required when you reject: the author needs to know why.",
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Your sign-in password, entered again: it binds this decision to you.",
    )
    revision = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, password: bool = True, **kwargs):
        """``password=False``: single sign-on is on and the decision is signed by signing in again
        at the provider (identity.sso), not by a password."""
        super().__init__(*args, **kwargs)
        if not password:
            del self.fields["password"]

    def clean(self):
        data = super().clean()
        if data.get("decision") == REJECT and not (data.get("comment") or "").strip():
            self.add_error("comment", "Say why you reject the change.")
        return data


class DeploymentStartForm(ServiceErrorsMixin, forms.Form):
    pipeline_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Pipeline run",
        help_text="A link to the CI/CD run doing the rollout.",
        widget=forms.URLInput(attrs={"placeholder": "https://ci.example.com/run/…"}),
    )


class DeploymentFinishForm(ServiceErrorsMixin, forms.Form):
    outcome = forms.ChoiceField(
        choices=[(Deployment.State.SUCCEEDED, "Succeeded"), (Deployment.State.FAILED, "Failed")],
        widget=forms.RadioSelect,
    )
    notes = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))


class DeploymentRollbackForm(ServiceErrorsMixin, forms.Form):
    reason = forms.CharField(
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What went wrong, and what the rollback restores.",
    )


class PostImplementationReviewForm(ServiceErrorsMixin, forms.Form):
    notes = forms.CharField(
        max_length=8000,
        widget=forms.Textarea(attrs={"rows": 6}),
        label="Review notes",
        help_text="Was the emergency justified, did the change do what it claimed, what follow-up is needed?",
    )
