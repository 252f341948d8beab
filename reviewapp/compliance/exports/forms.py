"""An export's range, shared by the downloads (console and API) and the export page: ``from`` and ``to`` dates
(YYYY-MM-DD, UTC, both inclusive), by default the last 30 days ending today. A bad value is refused naming the
field (a download 400s in plain text, the API as JSON, the page re-renders the form with the message beside it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.utils import timezone

from .selectors import DATASETS, FORMATS

DEFAULT_DAYS = 30
FORMAT_LABELS = {"csv": "CSV (a header row, then RFC 4180 rows)", "jsonl": "JSONL (one JSON object a line)"}


@dataclass(frozen=True)
class ExportRange:
    """UTC dates, both inclusive, and the half-open instants ``start <= t < end`` the selectors bound."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)


def range_ending(last: date) -> ExportRange:
    """The default range: the ``DEFAULT_DAYS`` days ending with ``last``."""
    return ExportRange(first=last - timedelta(days=DEFAULT_DAYS - 1), last=last)


def utc_today() -> date:
    return timezone.now().astimezone(UTC).date()


class IsoDateField(forms.DateField):
    """YYYY-MM-DD only (an HTML date input sends that), so a day and a month are never swapped."""

    widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip()
        if value in self.empty_values:
            return None
        if isinstance(value, date):
            return value
        try:
            return datetime.strptime(value, "%Y-%m-%d").date()
        except ValueError:
            raise forms.ValidationError(f"{value!r} is not a date: write it as YYYY-MM-DD (UTC).",
                                        code="invalid") from None


class ExportRangeForm(forms.Form):
    """``from`` is a Python keyword, so the two fields are added by name rather than declared."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from"] = IsoDateField(
            required=False, label="From (UTC date)",
            help_text=f"YYYY-MM-DD, the first day included, from 00:00 UTC; by default {DEFAULT_DAYS - 1} days "
                      "before To")
        self.fields["to"] = IsoDateField(
            required=False, label="To (UTC date, inclusive)",
            help_text="YYYY-MM-DD, the last day included, up to 24:00 UTC; by default today (UTC)")

    def clean(self):
        data = super().clean()
        if "from" in self.errors or "to" in self.errors:
            return data
        last = data.get("to") or utc_today()
        first = data.get("from") or range_ending(last).first
        if last < first:
            self.add_error("to", "Must not be before From.")
        else:
            data["range"] = ExportRange(first=first, last=last)
        return data

    @property
    def range(self) -> ExportRange:
        return self.cleaned_data["range"]

    def errors_by_field(self) -> dict[str, list[str]]:
        return {field: [str(e) for e in errors] for field, errors in self.errors.items()}

    def errors_as_text(self) -> str:
        """``from: …`` a line per refused field: the plain-text body of a download's 400."""
        return "".join(f"{field}: {' '.join(errors)}\n" for field, errors in self.errors_by_field().items())


class ExportForm(ExportRangeForm):
    """The export page's form: which dataset, which format, and the range."""

    dataset = forms.ChoiceField(choices=[(d.slug, d.title) for d in DATASETS.values()], label="Dataset",
                                widget=forms.RadioSelect, initial="decisions")
    fmt = forms.ChoiceField(choices=[(fmt, FORMAT_LABELS[fmt]) for fmt in FORMATS], label="Format",
                            widget=forms.RadioSelect, initial="csv")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(["dataset", "fmt", "from", "to"])
