"""The workflows of cases and decisions as transition tables (STYLE.md "Workflow state").

Each table is applied by one service only, which locks the row, checks the move here, saves the state
and writes its ``*.transitioned`` audit event: ``services.case_transition`` for cases,
``services.decisions.decision_transition`` for decisions. (Appeals: ``appeals.workflow``.)

Cases::

    new ─▶ in_review ─▶ awaiting_approval ─▶ decided ─▶ closed
     │        │  ▲              │
     │        ▼  │              ▼
     │       new (released)   in_review (sent back)
     └────────────▶ closed (merged or withdrawn)

Decisions (recorded in one of DECISION_START; sent_back, no_action and reversed are final)::

    (recorded) ─▶ awaiting_approval ─▶ enforced ─▶ lifted ─▶ reversed
         │               │                 │                    ▲
         │               ▼                 └────────────────────┘
         │           sent_back (the reviewer decides again: a new decision)
         ├─▶ enforced
         └─▶ no_action
"""

from __future__ import annotations

from reviewapp.audit.services import Entry, record

from .models import Case, Decision

State = Case.State

TRANSITIONS: dict[str, frozenset[str]] = {
    State.NEW: frozenset({State.IN_REVIEW, State.CLOSED}),
    State.IN_REVIEW: frozenset({State.NEW, State.AWAITING_APPROVAL, State.DECIDED}),
    State.AWAITING_APPROVAL: frozenset({State.DECIDED, State.IN_REVIEW}),
    State.DECIDED: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}

_D = Decision.State

# The states a decision may be recorded in: severe ones wait for a second approver, others take effect at once.
DECISION_START: frozenset[str] = frozenset({_D.AWAITING_APPROVAL, _D.ENFORCED, _D.NO_ACTION})
DECISION_TRANSITIONS: dict[str, frozenset[str]] = {
    _D.AWAITING_APPROVAL: frozenset({_D.ENFORCED, _D.SENT_BACK}),
    _D.SENT_BACK: frozenset(),
    _D.ENFORCED: frozenset({_D.LIFTED, _D.REVERSED}),
    _D.NO_ACTION: frozenset(),
    _D.LIFTED: frozenset({_D.REVERSED}),
    _D.REVERSED: frozenset(),
}


class InvalidTransition(Exception):
    """A move a workflow table does not allow; the message names the object and both states."""

    noun = "object"

    def __init__(self, obj, to: str):
        super().__init__(f"{self.noun} {obj.pk} cannot go from {obj.state or '(new)'} to {to}")
        self.obj, self.to = obj, to


class InvalidCaseTransition(InvalidTransition):
    noun = "case"

    @property
    def case(self) -> Case:
        return self.obj


class InvalidDecisionTransition(InvalidTransition):
    noun = "decision"


def move_check(table: dict[str, frozenset[str]], obj, to: str, error: type[InvalidTransition]) -> None:
    """Raise ``error`` unless ``table`` allows ``obj``'s move to ``to``."""
    if to not in table[obj.state]:
        raise error(obj, to)


def transition_apply(obj, *, table: dict[str, frozenset[str]], error: type[InvalidTransition], to: str, actor,
                     action: str, reason: str, fields: tuple[str, ...] = (), events: list[Entry] | None = None):
    """The one way a table's move is made: check it (``error`` if refused, nothing changed), save the state
    with the caller's other changed ``fields``, and write the ``action`` event ({from, to, reason}), or append
    it to ``events`` for the caller to record in bulk. The caller holds the row lock."""
    move_check(table, obj, to, error)
    before = obj.state
    obj.state = to
    obj.save(update_fields=["state", *fields])
    entry = Entry(actor=actor, action=action, target=obj, data={"from": before, "to": str(to), "reason": reason})
    if events is None:
        record(actor=entry.actor, action=entry.action, target=entry.target, data=entry.data)
    else:
        events.append(entry)
    return obj


def case_move_check(case: Case, to: str) -> None:
    """Raise InvalidCaseTransition unless the table allows ``case``'s move to ``to``."""
    move_check(TRANSITIONS, case, to, InvalidCaseTransition)


def decision_move_check(decision: Decision, to: str) -> None:
    """Raise InvalidDecisionTransition unless DECISION_TRANSITIONS allows the move (or, for a decision not
    yet saved, DECISION_START allows ``to`` as the state it is recorded in)."""
    if decision.pk is None:
        if to not in DECISION_START:
            raise InvalidDecisionTransition(decision, to)
        return
    move_check(DECISION_TRANSITIONS, decision, to, InvalidDecisionTransition)
