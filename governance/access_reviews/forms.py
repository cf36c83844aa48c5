"""The portal's access-review form. It checks the shape of what was posted; the service decides."""
from django import forms
from django.core.exceptions import ValidationError

from governance.models import AccessReviewItem


class ReviewDecisionForm(forms.Form):
    """A3: keep or revoke one grant. The decision comes from the button pressed; a revoke needs
    a comment, the reason the grantee and the audit trail will read."""

    decision = forms.ChoiceField(choices=AccessReviewItem.Decision.choices)
    comment = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required to revoke: why the grant goes.",
    )

    def clean(self):
        data = super().clean()
        if data.get("decision") == AccessReviewItem.Decision.REVOKE and not (data.get("comment") or "").strip():
            self.add_error("comment", "Say why the grant is revoked.")
        return data

    def add_service_errors(self, error: ValidationError) -> None:
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)


class BulkDecisionForm(forms.Form):
    """A3 for many grants: the items chosen (among those the user may see), one decision and one
    comment; ``confirm`` is set by the confirmation page a revoke goes through."""

    items = forms.ModelMultipleChoiceField(queryset=AccessReviewItem.objects.none(), error_messages={
        "required": "Choose at least one grant.",
        "invalid_choice": "One of the grants chosen is not one you can see.",
        "invalid_pk_value": "One of the grants chosen is not one you can see.",
    })
    decision = forms.ChoiceField(choices=AccessReviewItem.Decision.choices)
    comment = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}), label="Comment for the chosen grants",
        help_text="One comment for every grant chosen; required to revoke.",
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, items, **kwargs):
        kwargs.setdefault("auto_id", "id_bulk_%s")
        super().__init__(*args, **kwargs)
        self.fields["items"].queryset = items

    def clean(self):
        data = super().clean()
        if data.get("decision") == AccessReviewItem.Decision.REVOKE and not (data.get("comment") or "").strip():
            self.add_error("comment", "Say why the grants are revoked.")
        return data
