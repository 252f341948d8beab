"""The decision register's filters (django-filter): every one optional, a bad value a 400 naming the field.

Detector and appeal outcome are EXISTS subqueries, not joins: a case has thousands of flags and a decision
several appeals, and a join would repeat the decision once per match (and need DISTINCT on every page).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, QuerySet

from appeals.models import Appeal
from flags.models import Detector, Flag
from reviewapp.cases.models import Decision
from reviewapp.policy.models import Clause

_DATE = forms.DateInput(attrs={"type": "date"})

# The appeal outcome filter: an outcome, or where the decision stands without one.
NOT_APPEALED, PENDING = "none", "pending"
APPEAL_CHOICES = [(NOT_APPEALED, "Not appealed"), (PENDING, "Appeal pending"), *Appeal.Outcome.choices]


def _staff(request=None):
    return get_user_model().objects.order_by("username")  # account holders are not users: every user is staff


class _StaffChoice(django_filters.ModelChoiceFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, queryset=_staff, to_field_name="username", **kwargs)

def _day_start(value) -> datetime:
    return datetime.combine(value, time.min, tzinfo=UTC)


class _RangeForm(forms.Form):
    def clean(self):
        data = super().clean()
        start, end = data.get("decided_from"), data.get("decided_to")
        if start and end and end < start:
            self.add_error("decided_to", "must not be before Decided from")
        return data


class DecisionFilter(django_filters.FilterSet):
    clause = django_filters.CharFilter(method="filter_clause", label="Clause (reference, e.g. T-1)", max_length=32)
    action = django_filters.ChoiceFilter(choices=Decision._meta.get_field("action").choices, empty_label="any")
    state = django_filters.ChoiceFilter(choices=Decision.State.choices, empty_label="any")
    reviewer = _StaffChoice(field_name="decided_by", label="Decided by", empty_label="anyone")
    approver = _StaffChoice(field_name="approved_by", label="Approved by", empty_label="anyone")
    detector = django_filters.ModelChoiceFilter(
        queryset=Detector.objects.order_by("slug"), to_field_name="slug", method="filter_detector",
        label="Detector (of a flag behind the case)", empty_label="any")
    appeal = django_filters.ChoiceFilter(choices=APPEAL_CHOICES, method="filter_appeal",
                                         label="Outcome of appeal", empty_label="any")
    decided_from = django_filters.DateFilter(field_name="decided_at", method="filter_from", widget=_DATE,
                                             label="Decided from (UTC, inclusive)")
    decided_to = django_filters.DateFilter(field_name="decided_at", method="filter_to", widget=_DATE,
                                           label="Decided to (UTC, inclusive)")

    class Meta:
        model = Decision
        fields: list[str] = []
        form = _RangeForm

    def filter_clause(self, queryset: QuerySet[Decision], name, value: str) -> QuerySet[Decision]:
        value = value.strip()
        if not value:
            return queryset
        by_clause = Clause.decisions.through.objects.filter(decision_id=OuterRef("pk"), clause__ref__iexact=value)
        return queryset.filter(Exists(by_clause))

    def filter_detector(self, queryset, name, detector: Detector):
        return queryset.filter(Exists(Flag.objects.filter(case_id=OuterRef("case_id"), detector=detector)))

    def filter_appeal(self, queryset, name, value: str):
        appeals = Appeal.objects.filter(decision_id=OuterRef("pk"))
        if value == NOT_APPEALED:
            return queryset.filter(~Exists(appeals))
        if value == PENDING:
            return queryset.filter(Exists(appeals.filter(state__in=Appeal.OPEN_STATES)))
        return queryset.filter(Exists(appeals.filter(outcome=value)))

    def filter_from(self, queryset, name, value):
        return queryset.filter(decided_at__gte=_day_start(value))

    def filter_to(self, queryset, name, value):
        return queryset.filter(decided_at__lt=_day_start(value + timedelta(days=1)))
