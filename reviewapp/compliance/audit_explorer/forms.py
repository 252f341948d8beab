"""The explorer's filter form: every field optional; a bad value is a 400 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django import forms

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent

from ..records.history import Subject, UnknownSubject
from .selectors import SEARCH_MAX_LENGTH, EventFilters

_DATE = forms.DateInput(attrs={"type": "date"})


class EventFilterForm(forms.Form):
    actor = forms.CharField(max_length=255, required=False, label="Actor (name or user id)")
    actor_type = forms.ChoiceField(choices=[("", "any"), *AuditEvent.ActorType.choices], required=False,
                                   label="Kind of actor")
    action = forms.ChoiceField(choices=[("", "any"), *AuditAction.choices], required=False)
    target_type = forms.CharField(max_length=64, required=False, label="Target type",
                                  widget=forms.TextInput(attrs={"placeholder": "e.g. cases.decision"}))
    target_id = forms.CharField(max_length=128, required=False, label="Target id")
    since = forms.DateField(required=False, label="From (UTC, inclusive)", widget=_DATE)
    until = forms.DateField(required=False, label="To (UTC, inclusive)", widget=_DATE)
    q = forms.CharField(max_length=SEARCH_MAX_LENGTH, required=False, label="Search in event data",
                        help_text='Text anywhere in the data, or key=value for an exact value (case=12, action="warn")')
    within = forms.CharField(max_length=100, required=False, label="History of (with everything under it)",
                             widget=forms.TextInput(attrs={"placeholder": "e.g. cases.case:12"}),
                             help_text="A case, decision, appeal or share as <type>:<id>: its events and those of "
                                       "everything under it.")
    before = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)

    def clean_within(self) -> Subject | None:
        text = self.cleaned_data["within"].strip()
        if not text:
            return None
        try:
            return Subject.parse(text)
        except UnknownSubject as error:
            raise forms.ValidationError(str(error)) from None

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "must not be before From")
        return data

    def filters(self) -> EventFilters:
        data = self.cleaned_data

        def day(value, *, after: bool = False) -> datetime | None:  # a UTC date, as the pages show times
            return None if value is None else datetime.combine(value + timedelta(days=int(after)), time.min, tzinfo=UTC)

        return EventFilters(
            actor=data["actor"].strip(), actor_type=data["actor_type"], action=data["action"],
            target_type=data["target_type"].strip(), target_id=data["target_id"].strip(),
            since=day(data["since"]), until=day(data["until"], after=True), search=data["q"].strip(),
            within=data["within"],
        )
