"""The portal's forms. They check the shape of what was typed; the services decide the rest."""
from django import forms
from django.core.exceptions import ValidationError

from governance.models import Environment, Team
from releases.models import ChangeRequest, Deployment

APPROVE, REJECT, REQUEST_CHANGES = "approve", "reject", "request_changes"


class ServiceErrorsMixin:
    """Puts a service's ``ValidationError`` on the fields it names, the rest above the form."""

    def add_service_errors(self, error: ValidationError) -> None:
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)


class SignoffForm(ServiceErrorsMixin, forms.Form):
    """C11: a decision on the revision the reviewer saw, signed by re-entering their password."""

    decision = forms.ChoiceField(
        choices=[(APPROVE, "Approve this revision"),
                 (REQUEST_CHANGES, "Request changes: back to the author, who revises and resubmits"),
                 (REJECT, "Reject the change request (final)")],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required when you reject or request changes: the author needs to know why, or what to change.",
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
        if data.get("decision") == REQUEST_CHANGES and not (data.get("comment") or "").strip():
            self.add_error("comment", "Say what the author should change.")
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


# --- The developer's change form (issue 18) ---------------------------------------------------------


class UTCDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%dT%H:%M")


def _contributor_names(text: str) -> list[str]:
    return [name for name in (part.strip() for part in (text or "").replace(",", " ").split()) if name]


class ChangeRequestEditForm(ServiceErrorsMixin, forms.Form):
    """What the author may edit (``services.EDITABLE_FIELDS``); the service decides the rest (C1, C3)."""

    title = forms.CharField(max_length=200)
    artifact = forms.CharField(
        max_length=255, help_text="What is deployed: an image digest (…@sha256:…, required in production), "
        "a commit or a version.")
    description = forms.CharField(required=False, max_length=8000, strip=False,
                                  widget=forms.Textarea(attrs={"rows": 4}))
    implementation_plan = forms.CharField(required=False, max_length=8000, label="Implementation plan",
                                          widget=forms.Textarea(attrs={"rows": 4}),
                                          help_text="How the change is carried out, step by step.")
    backout_plan = forms.CharField(required=False, max_length=8000, label="Back-out plan",
                                   widget=forms.Textarea(attrs={"rows": 3}),
                                   help_text="How the change is undone if it goes wrong.")
    risk_impact = forms.CharField(required=False, max_length=8000, label="Risk and impact",
                                  widget=forms.Textarea(attrs={"rows": 3}),
                                  help_text="What could break, for whom, and how badly.")
    planned_start = forms.DateTimeField(required=False, label="Planned start (UTC)", widget=UTCDateTimeInput())
    planned_end = forms.DateTimeField(required=False, label="Planned end (UTC)", widget=UTCDateTimeInput())
    affected_service = forms.CharField(required=False, max_length=200, label="Affected service")
    ticket_url = forms.URLField(required=False, max_length=500, assume_scheme="https", label="Ticket",
                                widget=forms.URLInput(attrs={"placeholder": "https://tickets.example.com/…"}))
    source_url = forms.URLField(required=False, max_length=500, assume_scheme="https", label="Pull request or commits",
                                widget=forms.URLInput(attrs={"placeholder": "https://github.com/…/pull/…"}))
    contributors = forms.CharField(
        required=False, max_length=2000,
        help_text="Usernames of the others who wrote it (members of the team), separated by commas. "
        "None of them may approve or deploy it.")
    requested_reviewers = forms.CharField(
        required=False, max_length=2000, label="Request reviewers",
        help_text="Usernames of the people you ask to review, separated by commas: holders of approve or "
        "security approve for the environment, neither you nor a contributor. Anyone eligible may still approve.")
    emergency_reason = forms.CharField(required=False, max_length=4000, label="Why it cannot wait",
                                       widget=forms.Textarea(attrs={"rows": 2}),
                                       help_text="Required of an emergency change.")

    field_order = ["title", "artifact", "description", "ticket_url", "source_url", "contributors",
                   "requested_reviewers"]
    PEOPLE_FIELDS = ("contributors", "requested_reviewers")

    def clean_contributors(self):
        return _contributor_names(self.cleaned_data.get("contributors", ""))

    def clean_requested_reviewers(self):
        return _contributor_names(self.cleaned_data.get("requested_reviewers", ""))

    @classmethod
    def initial_for(cls, cr: ChangeRequest) -> dict:
        initial = {name: getattr(cr, name) for name in cls.base_fields if name not in cls.PEOPLE_FIELDS}
        for name in cls.PEOPLE_FIELDS:
            initial[name] = ", ".join(u.username for u in getattr(cr, name).all())
        return initial


class ChangeRequestCreateForm(ChangeRequestEditForm):
    """A new draft: what the edit form takes, plus where it goes and what kind of change it is."""

    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    environment = forms.ModelChoiceField(queryset=Environment.objects.order_by("order", "slug"), empty_label=None)
    change_type = forms.ChoiceField(choices=ChangeRequest.ChangeType.choices, initial=ChangeRequest.ChangeType.NORMAL,
                                    label="Type")
    risk = forms.ChoiceField(choices=ChangeRequest.Risk.choices, initial=ChangeRequest.Risk.MEDIUM)

    field_order = ["title", "team", "environment", "change_type", "risk", *ChangeRequestEditForm.field_order[1:]]

    def __init__(self, *args, teams=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams if teams is not None else Team.objects.none()
