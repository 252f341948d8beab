"""The evidence-access filters, shared by the pages and the API: every field optional; a bad value is a 400
naming the field (a person is named by username, and one nobody has is said so)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from .selectors import AccessFilters, person_by_username

_DATE = forms.DateInput(attrs={"type": "date"})
WEEKS_SHOWN = 12  # the per-person chart's default span, ending this week
MAX_WEEKS = 104


class _Dates(forms.Form):
    since = forms.DateField(required=False, label="From (UTC, inclusive)", widget=_DATE)
    until = forms.DateField(required=False, label="To (UTC, inclusive)", widget=_DATE)
    person = forms.CharField(max_length=150, required=False, label="Person (username)")

    def clean_person(self):
        username = self.cleaned_data["person"].strip()
        if not username:
            return None
        user = person_by_username(username)
        if user is None:
            raise forms.ValidationError(f"Nobody has the username {username!r}.")
        return user

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "Must not be before From.")
        return data

    def person_pk(self) -> int | None:
        return self.cleaned_data["person"].pk if self.cleaned_data.get("person") else None


class AccessFilterForm(_Dates):
    account = forms.CharField(max_length=128, required=False, label="Account (platform id)")
    case = forms.IntegerField(min_value=1, max_value=2**63 - 1, required=False, label="Case number")
    before = forms.IntegerField(min_value=1, max_value=2**63 - 1, required=False, widget=forms.HiddenInput)

    field_order = ["person", "account", "case", "since", "until", "before"]

    def filters(self, *, outside_only: bool) -> AccessFilters:
        data = self.cleaned_data
        return AccessFilters(person=self.person_pk(), account=data["account"].strip(), case=data["case"],
                             since=data["since"], until=data["until"], outside_only=outside_only)


class WeeklyForm(_Dates):
    field_order = ["person", "since", "until"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        today = timezone.now().date()
        data["until"] = data.get("until") or today
        data["since"] = data.get("since") or data["until"] - timedelta(weeks=WEEKS_SHOWN - 1)
        if (data["until"] - data["since"]).days > MAX_WEEKS * 7:
            self.add_error("since", f"At most {MAX_WEEKS} weeks at once.")
        return data
