"""The evidence request form of the portal page and the admin's add page. It checks only the shape
of what was posted (a framework, two dates); ``services.export_request`` decides the rest (order,
length, a start in the future) and its field errors are shown on the same fields."""
from datetime import date

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import EvidenceExport

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
PERIOD_HELP = "Calendar days in UTC, both included."


def year_to_date(today: date | None = None) -> tuple[date, date]:
    """The period offered by default: what auditors most often ask for first."""
    today = today or timezone.now().date()
    return today.replace(month=1, day=1), today


class ExportRequestForm(forms.Form):
    framework = forms.ChoiceField(choices=EvidenceExport.Framework.choices)
    period_start = forms.DateField(label="From", widget=DATE_WIDGET, help_text=PERIOD_HELP)
    period_end = forms.DateField(label="To", widget=DATE_WIDGET, help_text=PERIOD_HELP)

    def add_service_errors(self, error: ValidationError) -> None:
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)
