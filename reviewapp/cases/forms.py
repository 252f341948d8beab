"""Forms of the reviewer pages: they parse what was typed; the services decide whether it is allowed."""

from __future__ import annotations

import hashlib
import json

from django import forms
from django.core import signing

from reviewapp.limits import BoundedTextarea, BoundedTextField, max_chars
from reviewapp.policy.enforcement import Action
from reviewapp.policy.models import Clause

from .models import CaseNote, Decision
from .services.decisions import MAX_DURATION_DAYS
from .vocabulary import Signal


class QueueFilterForm(forms.Form):
    signal = forms.ChoiceField(choices=[("", "any"), *Signal.choices], required=False)
    campaign = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    priority_min = forms.IntegerField(min_value=0, max_value=100, required=False, label="Priority at least")
    account = forms.CharField(max_length=128, required=False, label="Account id contains")

    def __init__(self, *args, campaigns=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].choices = [("", "any"), *((c.pk, c.name) for c in campaigns)]

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        return {"signal": data["signal"], "campaign_id": data["campaign"], "priority_min": data["priority_min"],
                "account": data["account"].strip()}


class DecisionForm(forms.Form):
    """What a decision needs. Whether the action fits the clauses (and the rest of the policy) is the
    service's call (decisions.decision_record): its refusal is shown beside this form."""

    anchor = "decision-form"  # where the error summary's link to a refusal points

    clauses = forms.ModelMultipleChoiceField(
        queryset=Clause.objects.none(), widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Cite at least one clause."})
    action = forms.ChoiceField(choices=[("", "Choose an action…"), *Action.choices],
                               error_messages={"required": "Choose an action."})
    duration_days = forms.IntegerField(min_value=1, max_value=MAX_DURATION_DAYS, required=False,
                                       label="Duration (days)", help_text="For a rate limit or a suspension.")
    rationale = BoundedTextField(max_length=max_chars(Decision, "rationale"), rows=4,
                                 help_text="Internal: why, for the approver and auditors.",
                                 error_messages={"required": "Write the rationale."})
    facts_for_holder = BoundedTextField(max_length=max_chars(Decision, "facts_for_holder"), required=False,
                                        label="Facts for the account holder",
                                        help_text="Quoted in the statement of reasons; disclose only what you choose.")

    def __init__(self, *args, clauses=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.clause_list = list(clauses)
        self.fields["clauses"].queryset = Clause.objects.filter(pk__in=[c.pk for c in self.clause_list])

    def decision_arguments(self) -> dict:
        data = self.cleaned_data
        return {"clauses": list(data["clauses"]), "action": data["action"], "duration_days": data["duration_days"],
                "rationale": data["rationale"], "facts_for_holder": data["facts_for_holder"]}


CAMPAIGN_VERBS = {
    Action.NO_VIOLATION: "Record no violation for {}", Action.WARN: "Warn {}", Action.RATE_LIMIT: "Rate-limit {}",
    Action.SUSPEND: "Suspend {}", Action.TERMINATE: "Terminate {}",
}


def campaign_decision_sentence(*, action: str, count: int, duration_days: int | None) -> str:
    """What a campaign decision will do, in the words the reviewer confirms: "Rate-limit 3 accounts for 14 days"."""
    sentence = CAMPAIGN_VERBS[Action(action)].format(f"{count} account{'' if count == 1 else 's'}")
    if duration_days:
        sentence += f" for {duration_days} day{'' if duration_days == 1 else 's'}"
    return sentence


def _lines(text: str) -> str:
    # A browser sends a hidden input's line breaks as CRLF whatever was typed: compare the text, not its line ends.
    return text.replace("\r\n", "\n").replace("\r", "\n")


class CampaignConfirmationStale(ValueError):
    """The confirmed decision is not the one the confirmation page showed (changed, expired or forged)."""


class CampaignDecisionForm(DecisionForm):
    """A campaign decision, in two steps: the chosen accounts and the decision, then a confirmation page that
    names the count and the action. The confirmation carries every field back in hidden inputs plus a signed
    token over them, so what is enforced is exactly what the reviewer was shown."""

    SIGNING_NAMESPACE = "reviewapp.cases.campaign-decision"
    TOKEN_MAX_AGE = 60 * 60  # a confirmation page left open longer is shown again

    accounts = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, error_messages={
        "required": "Choose at least one account."})
    researchers_confirmed = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=False)

    def __init__(self, *args, accounts=(), researchers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["accounts"].choices = [(a, a) for a in accounts]
        self.fields["researchers_confirmed"].choices = [(a, a) for a in researchers]

    def _digest(self, *, campaign_id: int, reviewer_id: int) -> str:
        data = self.cleaned_data
        canonical = {
            "campaign": campaign_id, "reviewer": reviewer_id, "accounts": sorted(set(data["accounts"])),
            "researchers_confirmed": sorted(set(data["researchers_confirmed"])),
            "clauses": sorted(c.pk for c in data["clauses"]), "action": data["action"],
            "duration_days": data["duration_days"], "rationale": _lines(data["rationale"]),
            "facts_for_holder": _lines(data["facts_for_holder"]),
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()

    def confirmation_token(self, *, campaign_id: int, reviewer_id: int) -> str:
        digest = self._digest(campaign_id=campaign_id, reviewer_id=reviewer_id)
        return signing.dumps(digest, salt=self.SIGNING_NAMESPACE)

    def check_confirmation(self, token: str, *, campaign_id: int, reviewer_id: int) -> None:
        try:
            digest = signing.loads(token, salt=self.SIGNING_NAMESPACE, max_age=self.TOKEN_MAX_AGE)
        except signing.SignatureExpired as exc:
            raise CampaignConfirmationStale("the confirmation was left open too long; check it again") from exc
        except signing.BadSignature as exc:
            raise CampaignConfirmationStale("the decision was not confirmed on its confirmation page") from exc
        if digest != self._digest(campaign_id=campaign_id, reviewer_id=reviewer_id):
            raise CampaignConfirmationStale("the decision changed after its confirmation page; check it again")


class NoteForm(forms.Form):
    text = BoundedTextField(max_length=max_chars(CaseNote, "text"), label="Add a note",
                            widget=BoundedTextarea(attrs={"rows": 3, "data-shortcut": "n", "aria-keyshortcuts": "n"}),
                            error_messages={"required": "Write the note."})


class SendBackForm(forms.Form):
    # Not required here: decision_send_back is the one place that insists on a reason (its message is shown).
    reason = BoundedTextField(max_length=max_chars(Decision, "sent_back_reason"), rows=2, required=False,
                              label="Why send it back", help_text="The reviewer reads this.")
