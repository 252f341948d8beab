"""Statements of reasons (DSA Art. 17): what the holder is told, and its DSA Transparency Database export.

The statement is built once, when a decision is enforced, and stored as issued (``content``); pages,
emails and exports read that stored content, never the live decision.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.template.loader import render_to_string

from reviewapp.policy.enforcement import Action

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
        "issued_at": issued_at.isoformat(),
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


def statement_email(statement, *, to: str, sign_in_url: str) -> dict:
    """The notice to the holder, as an outbox "email" payload (the text is fixed when it is queued)."""
    content = statement.content
    body = render_to_string("cases/statement_email.txt",
                            {"s": content, "statement": statement, "sign_in_url": sign_in_url})
    return {"to": [to], "subject": f"Decision about your account {content['account_id']}: "
                                   f"{content['restriction']['label']}", "body": body}


DSA_RESTRICTION = {
    Action.RATE_LIMIT: {"decision_provision": "DECISION_PROVISION_PARTIAL_SUSPENSION"},
    Action.SUSPEND: {"decision_account": "DECISION_ACCOUNT_SUSPENDED"},
    Action.TERMINATE: {"decision_account": "DECISION_ACCOUNT_TERMINATED"},
}


class NotReportable(ValueError):
    """A statement the Transparency Database does not take (no restriction, e.g. a warning)."""


def dsa_export(statement) -> dict:
    """The statement in the DSA Transparency Database's field vocabulary (one statement, as JSON).

    Only restrictions are reported: a warning restricts nothing and raises NotReportable.
    """
    content = statement.content
    action = Action(content["restriction"]["action"])
    if action not in DSA_RESTRICTION:
        raise NotReportable(f"a {action.label.lower()} restricts nothing; the Transparency Database takes "
                            "only restrictions")
    clauses = content["ground"]["clauses"]
    ends = (content["restriction"]["ends_at"] or "")[:10] or None
    export = {
        **DSA_RESTRICTION[action],
        "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "incompatible_content_ground": "; ".join(f"{c['ref']} {c['title']}" for c in clauses),
        "incompatible_content_explanation": " ".join(c["text"] for c in clauses)[:2000],
        "incompatible_content_illegal": "No",
        "category": clauses[0]["dsa_category"],
        "content_type": ["CONTENT_TYPE_OTHER"],
        "content_type_other": "API usage (prompts and model outputs)",
        "decision_facts": content["facts"][:5000],
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes" if content["automated_detection"] else "No",
        "automated_decision": ("AUTOMATED_DECISION_NOT_AUTOMATED" if not content["automated_decision"]
                               else "AUTOMATED_DECISION_FULLY"),
        "application_date": content["restriction"]["starts_at"][:10],
        "puid": f"reviewapp-statement-{statement.pk}",
    }
    if action == Action.RATE_LIMIT:
        export["end_date_service_restriction"] = ends
    elif action == Action.SUSPEND:
        export["end_date_account_restriction"] = ends
    return export
