"""Forms of the second look: drawing a sample (compliance) and a senior's blind verdict."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from reviewapp.policy.enforcement import Action
from reviewapp.policy.models import Clause

from .models import SecondLook, SecondLookSample
from .services import MAX_PER_STRATUM, MAX_SEED


class SampleDrawForm(forms.Form):
    strata = forms.ChoiceField(choices=SecondLookSample.Strata.choices, initial=SecondLookSample.Strata.CLAUSE,
                               help_text="Each stratum gets its own draw of the size below.")
    per_stratum = forms.IntegerField(min_value=1, max_value=MAX_PER_STRATUM, initial=5,
                                     label="Decisions per stratum",
                                     help_text="Without strata: the size of the whole sample.")
    clause_refs = forms.MultipleChoiceField(required=False, label="Only decisions citing",
                                            help_text="None ticked: any clause.",
                                            widget=forms.CheckboxSelectMultiple)
    reviewers = forms.ModelMultipleChoiceField(queryset=get_user_model().objects.none(), required=False,
                                               label="Only decisions taken by", help_text="None ticked: anyone.",
                                               widget=forms.CheckboxSelectMultiple)
    decided_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    decided_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    seed = forms.IntegerField(required=False, min_value=0, max_value=MAX_SEED,
                              help_text="Empty: a random seed, recorded with the sample. Give a recorded one to "
                                        "repeat a draw.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        refs = Clause.objects.order_by("ref").values_list("ref", flat=True).distinct()
        self.fields["clause_refs"].choices = [(ref, ref) for ref in refs]
        self.fields["reviewers"].queryset = (get_user_model().objects.filter(decisions__isnull=False)
                                             .distinct().order_by("username"))

    def clean(self):
        data = super().clean()
        if data.get("decided_from") and data.get("decided_to") and data["decided_from"] > data["decided_to"]:
            self.add_error("decided_to", "The end of the range is before its start.")
        return data


class VerdictForm(forms.Form):
    action = forms.ChoiceField(choices=[("", "Choose an action"), *Action.choices])
    clauses = forms.ModelMultipleChoiceField(queryset=Clause.objects.none(), widget=forms.CheckboxSelectMultiple,
                                             help_text="The clauses your verdict rests on.")
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}),
                                max_length=SecondLook._meta.get_field("rationale").max_length,
                                help_text="Why: for compliance, who compares it with the first decision.")

    def __init__(self, *args, clauses=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clauses"].queryset = Clause.objects.filter(pk__in=[c.pk for c in clauses]).order_by("position")
