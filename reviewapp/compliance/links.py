"""The page for an audit target: ``target_url("cases.decision", "7")`` → the decision's record in the console.

Audit events name what they were done to as ``(target_type, target_id)``: a model's ``label_lower`` and primary
key (``services.record`` with a model instance), or a ``Target`` spelled out by the writer ("cases.case",
"people.user", "audit.checkpoint" with a seq, "forum_collection", "stix_object"). Every area of the console
links them through this one module.

- A type with a page of its own links to it (a case, a decision's record, an appeal, a share, a campaign…).
- A type whose page needs another row's key (a push's share, a policy version's slug and number, an appeal
  message's appeal) is looked up: ``target_urls`` resolves a whole page of targets with one query per such
  type, so a list of events costs the same number of queries however long it is.
- A known type without a page of its own (an account, a flag, an ingested batch, an outbox message…) links
  to its events in the audit explorer, which is what a compliance officer wants of it; so does a type this
  module does not know yet (a new area's rows), and a type whose page is not in the URL conf (yet).
- An empty type or id, or an id that cannot be a key of a known type, gives None: show it as text.

The pages linked do their own permission checks; a link says where a thing is, never that you may see it.
Links to an attachment go to its appeal, not to the attachment itself: opening one is audited evidence access.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse

Pair = tuple[str, str]

# Types whose page takes the target's own primary key.
_DIRECT: dict[str, str] = {
    "cases.case": "review:case",
    "cases.decision": "compliance:decision",
    "cases.statementofreasons": "review:statement",
    "cases.campaign": "review:campaign",
    "appeals.appeal": "appeal-review:appeal",
    "forum.shareproposal": "forum:share",
    "compliance_verification.verificationrun": "compliance:verification",
    "compliance_quality.secondlooksample": "compliance:quality-sample",
}

# Types with one list page of their own (the row is found on it by its anchor, where the page has one).
_LISTED: dict[str, tuple[str, str]] = {
    "flags.detector": ("detectors:list", "detector-{id}"),
    "people.user": ("people:staff", ""),
    "forum.inboundrereview": ("forum:rereviews", ""),
    "forum.inboundmatch": ("forum:inbound", ""),
    "compliance_quality.calibrationalert": ("compliance:calibration", ""),
    "compliance_retention.purgerun": ("compliance:retention", "run-{id}"),
}

# Known types with no page of their own: their events in the explorer.
_EVENTS_ONLY = frozenset({
    "cases.account", "cases.holderlink", "flags.flag", "flags.flagbatch", "flags.flagsetaside",
    "flags.detectortoken", "outbox.outboxmessage", "forum_collection", "stix_object",
    "compliance_quality.secondlook",  # its page is the senior reviewer's blind review, not the officer's
})


def _lookup_pushes(ids: list[int]) -> dict[int, str]:
    from reviewapp.forum.models import ForumPush

    return {pk: reverse("forum:share", args=[proposal_id])
            for pk, proposal_id in ForumPush.objects.filter(pk__in=ids, proposal__isnull=False)
            .values_list("pk", "proposal_id")}


def _lookup_policy_versions(ids: list[int]) -> dict[int, str]:
    from reviewapp.policy.models import PolicyVersion

    rows = PolicyVersion.objects.filter(pk__in=ids).values_list("pk", "policy__slug", "number")
    return {pk: reverse("policy:version", kwargs={"slug": slug, "number": number}) for pk, slug, number in rows}


def _lookup_appeal_children(model_name: str) -> Callable[[list[int]], dict[int, str]]:
    def lookup(ids: list[int]) -> dict[int, str]:
        from appeals import models

        model = getattr(models, model_name)
        return {pk: reverse("appeal-review:appeal", args=[appeal_id])
                for pk, appeal_id in model.objects.filter(pk__in=ids).values_list("pk", "appeal_id")}

    return lookup


def _lookup_case_notes(ids: list[int]) -> dict[int, str]:
    from reviewapp.cases.models import CaseNote

    return {pk: reverse("review:case", args=[case_id])
            for pk, case_id in CaseNote.objects.filter(pk__in=ids).values_list("pk", "case_id")}


def _lookup_checkpoints(seqs: list[int]) -> dict[int, str]:
    # An "audit.checkpoint" target is the seq of the chain head it signed: link that event.
    from reviewapp.audit.models import AuditEvent

    return {seq: reverse("compliance:audit-event", args=[pk])
            for seq, pk in AuditEvent.objects.filter(seq__in=seqs).values_list("seq", "pk")}


# Types whose page is found through another row: one query per type for any number of targets.
_LOOKUPS: dict[str, Callable[[list[int]], dict[int, str]]] = {
    "forum.forumpush": _lookup_pushes,
    "policy.policyversion": _lookup_policy_versions,
    "appeals.appealmessage": _lookup_appeal_children("AppealMessage"),
    "appeals.appealattachment": _lookup_appeal_children("AppealAttachment"),
    "cases.casenote": _lookup_case_notes,
    "audit.checkpoint": _lookup_checkpoints,
}

KNOWN_TYPES = frozenset(_DIRECT) | frozenset(_LISTED) | _EVENTS_ONLY | frozenset(_LOOKUPS)


_NOUNS: dict[str, str] = {
    "cases.case": "Case", "cases.decision": "Decision", "cases.statementofreasons": "Statement of reasons",
    "cases.campaign": "Campaign", "cases.account": "Account", "cases.casenote": "Case note",
    "cases.holderlink": "Sign-in link", "appeals.appeal": "Appeal", "appeals.appealmessage": "Appeal message",
    "appeals.appealattachment": "Appeal attachment", "forum.shareproposal": "Forum share",
    "forum.forumpush": "Forum push", "forum.inboundmatch": "Forum match", "forum.inboundrereview": "Re-review",
    "forum_collection": "Forum collection", "stix_object": "STIX object", "flags.flag": "Flag",
    "flags.flagbatch": "Flag batch", "flags.flagsetaside": "Flag set aside", "flags.detector": "Detector",
    "flags.detectortoken": "Detector token", "outbox.outboxmessage": "Outbox message",
    "policy.policyversion": "Policy version", "people.user": "User", "audit.checkpoint": "Event in the chain #",
    "compliance_verification.verificationrun": "Verification run",
    "compliance_quality.secondlooksample": "Second-look sample", "compliance_quality.secondlook": "Second look",
    "compliance_quality.calibrationalert": "Calibration alert", "compliance_retention.purgerun": "Retention purge run",
}


def target_label(target_type: str, target_id: str) -> str:
    """A target as a person reads it ("Decision 7"); a type not known here as it is stored ("x.y 7")."""
    noun = _NOUNS.get(target_type)
    if noun is None:
        return f"{target_type} {target_id}".strip()
    return f"{noun}{target_id}" if noun.endswith("#") else f"{noun} {target_id}"


def events_url(target_type: str, target_id: str) -> str:
    """The explorer filtered to one target's events."""
    return f"{reverse('compliance:audit-events')}?{urlencode({'target_type': target_type, 'target_id': target_id})}"


def _key(target_id: str) -> int | None:
    text = str(target_id)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _reverse(name: str, *args, target_type: str, target_id: str) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:  # a page another area has not shipped (or has renamed): its events meanwhile
        return events_url(target_type, target_id)


def _without_lookup(target_type: str, target_id: str) -> str | None:
    if not target_type or not target_id:
        return None
    if target_type in _EVENTS_ONLY or target_type not in KNOWN_TYPES:
        return events_url(target_type, target_id)
    pk = _key(target_id)
    if pk is None:  # not a key of that type: nothing to link
        return None
    if target_type in _DIRECT:
        return _reverse(_DIRECT[target_type], pk, target_type=target_type, target_id=target_id)
    if target_type in _LISTED:
        name, anchor = _LISTED[target_type]
        url = _reverse(name, target_type=target_type, target_id=target_id)
        return url + (f"#{anchor.format(id=pk)}" if anchor and "?" not in url else "")
    return None


def target_urls(pairs: Iterable[Pair]) -> dict[Pair, str]:
    """The page of each ``(target_type, target_id)`` that has one (those without are left out of the answer).

    One query per type that needs a lookup, whatever the number of pairs.
    """
    found: dict[Pair, str] = {}
    wanted: dict[str, dict[int, list[Pair]]] = defaultdict(lambda: defaultdict(list))
    for pair in set(pairs):
        target_type, target_id = pair[0] or "", str(pair[1] or "")
        if target_type in _LOOKUPS:
            pk = _key(target_id)
            if pk is not None:
                wanted[target_type][pk].append(pair)
            continue
        url = _without_lookup(target_type, target_id)
        if url:
            found[pair] = url
    for target_type, by_pk in wanted.items():
        for pk, url in _LOOKUPS[target_type](list(by_pk)).items():
            for pair in by_pk[pk]:
                found[pair] = url
    return found


def target_url(target_type: str, target_id: str) -> str | None:
    """The page for one audit target, or None when it has none (see the module docstring)."""
    return target_urls([(target_type, target_id)]).get((target_type, target_id))


def chain_event_url(seq: int) -> str | None:
    """The event at a place in the chain (a broken link a verification names), or None when no event has it."""
    return target_url("audit.checkpoint", str(seq))
