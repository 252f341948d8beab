"""The report's period, shared by the page, the CSV downloads and the API: ``from`` and ``to`` months (YYYY-MM,
UTC, both inclusive), by default the last 12 months ending with this one. A bad value is refused naming the
field (the page 400 with the form, a CSV 400 in plain text, the API 400 as JSON)."""

from __future__ import annotations

import re
from datetime import UTC, date

from django import forms
from django.utils import timezone

from .selectors import Period, add_months, month_start

MONTHS_SHOWN = 12
MAX_MONTHS = 120
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class MonthField(forms.CharField):
    widget = forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM", "pattern": r"\d{4}-\d{2}"})

    def to_python(self, value):
        value = super().to_python(value).strip()
        if not value:
            return None
        match = _MONTH.match(value)
        if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 2000:
            raise forms.ValidationError(f"{value!r} is not a month: write it as YYYY-MM, e.g. 2026-01.")
        return date(int(match[1]), int(match[2]), 1)


class PeriodForm(forms.Form):
    """``from`` is a Python keyword, so the two fields are added by name rather than declared."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from"] = MonthField(required=False, label="From month (UTC)",
                                         help_text=f"YYYY-MM; by default {MONTHS_SHOWN - 1} months before To")
        self.fields["to"] = MonthField(required=False, label="To month (UTC, inclusive)",
                                       help_text="YYYY-MM; by default this month")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        this_month = month_start(timezone.now().astimezone(UTC).date())
        last = data.get("to") or this_month
        first = data.get("from") or add_months(last, -(MONTHS_SHOWN - 1))
        if last < first:
            self.add_error("to", "Must not be before From.")
        elif (last.year - first.year) * 12 + last.month - first.month + 1 > MAX_MONTHS:
            self.add_error("from", f"At most {MAX_MONTHS} months at once.")
        else:
            data["period"] = Period(first=first, last=last)
        return data

    @property
    def period(self) -> Period:
        return self.cleaned_data["period"]

    def query(self) -> str:
        """The period as the query string of the chart downloads (empty when the defaults apply)."""
        period = self.period
        return f"from={period.first:%Y-%m}&to={period.last:%Y-%m}"

    def errors_by_field(self) -> dict[str, list[str]]:
        return {field: [str(e) for e in errors] for field, errors in self.errors.items()}
