"""The Forum's forms: what a proposer ticks, an officer's narrowing, reasons. The service enforces every rule
(minimisation, TLP, cluster size); these only parse input and name the field and bound of bad input."""

from __future__ import annotations

from django import forms

from .content import ShareChoice
from .services import REASON_MAX
from .tlp import DEFAULT_TLP, PROTECTIVE_TLPS, Tlp
from .trust_groups import collection_choices

PROTECTIVE_CHOICES = [(t.value, t.label) for t in Tlp if t in PROTECTIVE_TLPS]


class ChoiceForm(forms.Form):
    """The items of a share. Excerpts are off by default and ticked one by one."""

    campaign_summary = forms.BooleanField(required=False, initial=True, label="Campaign summary")
    volume_stats = forms.BooleanField(required=False, initial=True, label="Volume statistics")
    account_pseudonyms = forms.BooleanField(required=False, initial=False, label="Account pseudonyms")
    organization_pseudonyms = forms.BooleanField(required=False, initial=False, label="Organisation pseudonyms")
    fingerprints = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    excerpts = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, fingerprints=(), excerpts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["fingerprints"].choices = [(f, f) for f in fingerprints]
        self.fields["excerpts"].choices = [(e, e) for e in excerpts]

    def choice(self) -> ShareChoice:
        data = self.cleaned_data
        pairs = set()
        for key in data["excerpts"]:
            flag_id, index = key.split(":")
            pairs.add((int(flag_id), int(index)))
        return ShareChoice(campaign_summary=data["campaign_summary"], volume_stats=data["volume_stats"],
                           account_pseudonyms=data["account_pseudonyms"],
                           organization_pseudonyms=data["organization_pseudonyms"],
                           fingerprints=frozenset(data["fingerprints"]), excerpts=frozenset(pairs))


class ProposeForm(ChoiceForm):
    collection_id = forms.ChoiceField(label="Destination collection (trust group)")
    tlp = forms.ChoiceField(label="TLP 2.0 marking", initial=DEFAULT_TLP.value,
                            choices=[(t.value, t.label) for t in Tlp],
                            help_text="TLP:AMBER+STRICT by default; with pseudonyms or excerpts only TLP:AMBER, "
                                      "TLP:AMBER+STRICT or TLP:RED.")
    intrusion_set_name = forms.CharField(required=False, max_length=200, label="Intrusion set (if attributed)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["collection_id"].choices = collection_choices()

    def clean(self):
        data = super().clean()
        carries = (data.get("account_pseudonyms") or data.get("organization_pseudonyms") or data.get("excerpts"))
        if carries and data.get("tlp") and Tlp(data["tlp"]) not in PROTECTIVE_TLPS:
            self.add_error("tlp", "With pseudonyms or excerpts choose TLP:AMBER, TLP:AMBER+STRICT or TLP:RED.")
        return data


class NarrowForm(ChoiceForm):
    reason = forms.CharField(max_length=REASON_MAX, widget=forms.Textarea(attrs={"rows": 2}),
                             label="Why narrow it")
    tlp = forms.ChoiceField(required=False, choices=[("", "keep")] + [(t.value, t.label) for t in Tlp],
                            label="TLP (only the same or stricter)")


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=REASON_MAX, widget=forms.Textarea(attrs={"rows": 2}), label="Reason")


class ApproveForm(forms.Form):
    version = forms.IntegerField(min_value=1)
    bundle_sha256 = forms.RegexField(regex=r"^[0-9a-f]{64}$", label="Bundle SHA-256")


class IncludeForm(ReasonForm):
    account = forms.IntegerField(min_value=1)


class ReReviewDoneForm(forms.Form):
    note = forms.CharField(max_length=2_000, widget=forms.Textarea(attrs={"rows": 2}),
                           label="What you found on looking again",
                           help_text="Recorded in the audit trail with your name: whether the decision still stands "
                                     "on the case's other evidence, and what you did if it does not.")
