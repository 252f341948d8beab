"""Statements of reasons (DSA Art. 17): what the holder is told, and its DSA Transparency Database export.

The statement is built once, when a decision is enforced, and stored as issued (``content``); pages,
emails and exports read that stored content, never the live decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.template.loader import render_to_string

from reviewapp.policy.dsa_rules import BATCH_MAX, EEA_COUNTRY_CODES, batch_errors, statement_errors
from reviewapp.policy.enforcement import Action

from .models import StatementOfReasons

SCOPE = {
    Action.WARN: "A formal warning on your account. Your access is not restricted.",
    Action.RATE_LIMIT: "Your account's API request rate is limited for the period below.",
    Action.SUSPEND: "Your account's access to the API and its keys are suspended for the period below.",
    Action.TERMINATE: "Your account is closed and its API keys are revoked.",
}
OUT_OF_COURT = (
    "You may also refer this decision to a certified out-of-court dispute settlement body (DSA Art. 21), "
    "or seek redress before a court."
)


def statement_content(decision, *, issued_at: datetime, appeal_deadline: datetime) -> dict:
    """Everything DSA Art. 17 asks for: restriction, scope, duration, facts, automation, ground, redress."""
    action = Action(decision.action)
    clauses = sorted(decision.clauses.all(), key=lambda clause: clause.position)
    version = decision.policy_version
    return {
        "decision_id": decision.pk,
        "account_id": decision.account.external_id,
        # The account belongs to an organisation (a business customer); unknown otherwise.
        "account_type": "business" if decision.account.organization_id else None,
        "issued_at": issued_at.isoformat(),
        "content_date": content_date(decision.case, fallback=issued_at),
        "restriction": {
            "action": action.value,
            "label": action.label,
            "scope": SCOPE[action],
            "starts_at": decision.effective_at.isoformat() if decision.effective_at else issued_at.isoformat(),
            "ends_at": decision.ends_at.isoformat() if decision.ends_at else None,
            "duration_days": decision.duration_days,
        },
        "facts": decision.facts_for_holder,
        "automated_detection": True,   # cases start from automated detectors' flags
        "automated_decision": False,   # a person decided; severe actions by two people
        "ground": {
            "policy": version.policy.title,
            "version": version.number,
            "effective_from": version.effective_from.isoformat(),
            "clauses": [{"ref": c.ref, "title": c.title, "text": c.text, "dsa_category": c.dsa_category}
                        for c in clauses],
        },
        "redress": {
            "appeal_deadline": appeal_deadline.isoformat(),
            "appeal_url": f"{settings.PUBLIC_BASE_URL}/appeals/",
            "how": "Appeal free of charge, online, until the deadline; a person who took no part in this "
                   "decision will review it and give you reasons.",
            "other": OUT_OF_COURT,
        },
    }


def content_date(case, *, fallback: datetime) -> str:
    """When the content (the prompts the detectors flagged) was sent: the day of the case's latest
    observed traffic, else the day the case was opened (its first flag had arrived by then)."""
    moment = case.last_observed_at or case.opened_at or fallback
    return moment.astimezone(UTC).date().isoformat()


def statement_email(statement, *, to: str, sign_in_url: str) -> dict:
    """The notice to the holder, as an outbox "email" payload (the text is fixed when it is queued)."""
    content = statement.content
    body = render_to_string("cases/statement_email.txt",
                            {"s": content, "statement": statement, "sign_in_url": sign_in_url})
    return {"to": [to], "subject": f"Decision about your account {content['account_id']}: "
                                   f"{content['restriction']['label']}", "body": body}


# Our actions restrict an AI model's API account, never content's visibility or the holder's income, so
# decision_visibility and decision_monetary (payments *to* the recipient, e.g. monetisation) never apply:
# - a rate limit keeps the service but less of it: a partial suspension of the provision of the service;
# - a suspension stops the account's access and keys for a time: suspension of the account;
# - a termination closes the account for good: termination of the account.
# Each timed restriction carries the end date of its own kind.
DSA_RESTRICTION = {
    Action.RATE_LIMIT: ("decision_provision", "DECISION_PROVISION_PARTIAL_SUSPENSION", "end_date_service_restriction"),
    Action.SUSPEND: ("decision_account", "DECISION_ACCOUNT_SUSPENDED", "end_date_account_restriction"),
    Action.TERMINATE: ("decision_account", "DECISION_ACCOUNT_TERMINATED", None),
}
DSA_ACCOUNT_TYPE = {"business": "ACCOUNT_TYPE_BUSINESS", "private": "ACCOUNT_TYPE_PRIVATE"}


class NotReportable(ValueError):
    """A statement the Transparency Database does not take (no restriction, e.g. a warning)."""


def _bounded(text: str, limit: int) -> str:
    """``text`` within the API's ``max:limit`` characters, an ellipsis marking a cut (the full text is
    in the statement the holder received). Paragraphs are kept; the API trims the ends, so do we."""
    text = text.strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _day(moment: str | None) -> str | None:
    """The API's ``Y-m-d`` for one of our RFC 3339 timestamps, as a UTC day."""
    return datetime.fromisoformat(moment).astimezone(UTC).date().isoformat() if moment else None


def dsa_export(statement) -> dict:
    """The statement in the DSA Transparency Database's field vocabulary: one item of ``POST
    /api/v1/statements`` that passes ``reviewapp.policy.dsa_rules.statement_errors``.

    Only restrictions are reported: a warning restricts nothing and raises NotReportable.
    The choices, where the API's vocabulary leaves room:
    - ground: always the terms of service (``DECISION_GROUND_INCOMPATIBLE_CONTENT``), never illegality;
      ``category`` is the first clause's DSA category, further clauses' categories go in
      ``category_addition``;
    - content: ``CONTENT_TYPE_TEXT`` — what was restricted for is prompts and outputs, which are text;
      ``content_date`` the day of the flagged traffic (statements issued before it was recorded fall
      back to the case's dates);
    - source: ``SOURCE_VOLUNTARY`` — our own detectors and Forum intelligence, neither an Art. 16 notice
      nor a trusted flagger's, so no ``source_identity``;
    - scope: every EEA country, because an account restriction applies wherever the account is used;
    - ``account_type`` only when we know the account is an organisation's; ``content_language`` never
      (prompts are in any language and we do not classify them).
    """
    content = statement.content
    action = Action(content["restriction"]["action"])
    if action not in DSA_RESTRICTION:
        raise NotReportable(f"a {action.label.lower()} restricts nothing; the Transparency Database takes "
                            "only restrictions")
    restriction, value, end_field = DSA_RESTRICTION[action]
    clauses = content["ground"]["clauses"]
    categories = list(dict.fromkeys(c["dsa_category"] for c in clauses))
    export = {
        restriction: value,
        "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "incompatible_content_ground": _bounded("; ".join(f"{c['ref']} {c['title']}" for c in clauses), 500),
        "incompatible_content_explanation": _bounded(" ".join(f"{c['ref']}: {c['text']}" for c in clauses), 2000),
        "incompatible_content_illegal": "No",
        "category": categories[0],
        "content_type": ["CONTENT_TYPE_TEXT"],
        "territorial_scope": list(EEA_COUNTRY_CODES),
        "content_date": content.get("content_date") or _legacy_content_date(statement),
        "application_date": _day(content["restriction"]["starts_at"]),
        "decision_facts": _bounded(content["facts"], 5000),
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes" if content["automated_detection"] else "No",
        "automated_decision": ("AUTOMATED_DECISION_FULLY" if content["automated_decision"]
                               else "AUTOMATED_DECISION_NOT_AUTOMATED"),
        "puid": f"reviewapp-statement-{statement.pk}",
    }
    if categories[1:]:
        export["category_addition"] = categories[1:]
    if end_field and content["restriction"]["ends_at"]:
        export[end_field] = _day(content["restriction"]["ends_at"])
    if content.get("account_type") in DSA_ACCOUNT_TYPE:
        export["account_type"] = DSA_ACCOUNT_TYPE[content["account_type"]]
    return export


def _legacy_content_date(statement) -> str:
    """Statements issued before ``content_date`` was recorded: the case's dates as they are now (the one
    place the export reads beyond the stored statement)."""
    return content_date(statement.decision.case, fallback=datetime.fromisoformat(statement.content["issued_at"]))


@dataclass
class DsaExportReport:
    """What a batch export did: how many statements went out, which were not reportable, which refused."""

    batches: int = 0
    exported: int = 0
    not_reported: list[int] = field(default_factory=list)
    refused: dict[int, dict] = field(default_factory=dict)


def statements_issued_between(since: datetime | None, until: datetime | None):
    """Statements issued in ``[since, until)``, oldest first, for the Transparency Database export."""
    statements = StatementOfReasons.objects.select_related("decision__case").order_by("issued_at", "pk")
    if since:
        statements = statements.filter(issued_at__gte=since)
    if until:
        statements = statements.filter(issued_at__lt=until)
    return statements


def dsa_batches(statements: Iterable, *, report: DsaExportReport, size: int = BATCH_MAX) -> Iterator[dict]:
    """``POST /api/v1/statements`` bodies, ``{"statements": [...]}`` of at most ``size`` (≤ 100) each.

    Every item passes ``statement_errors`` and every body ``batch_errors``
    (``reviewapp.policy.dsa_rules``), so the API takes each body whole. A warning is not reported
    (``report.not_reported``); a statement the rules refuse is left out and named with its errors in
    ``report.refused`` rather than sent to be refused with its whole batch.
    """
    if not 1 <= size <= BATCH_MAX:
        raise ValueError(f"a batch holds 1 to {BATCH_MAX} statements")
    items: list[dict] = []

    def body() -> dict:
        batch = {"statements": items}
        if errors := batch_errors(batch):   # cannot happen with checked items and unique puids
            raise RuntimeError(f"the Transparency Database would refuse this batch: {errors}")
        report.batches += 1
        report.exported += len(items)
        return batch

    for statement in statements:
        try:
            item = dsa_export(statement)
        except NotReportable:
            report.not_reported.append(statement.pk)
            continue
        if errors := statement_errors(item, in_batch=True):
            report.refused[statement.pk] = errors
            continue
        items.append(item)
        if len(items) == size:
            yield body()
            items = []
    if items:
        yield body()
