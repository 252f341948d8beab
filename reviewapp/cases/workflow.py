"""The case workflow as a transition table (STYLE.md "Workflow state"), applied only by
``services.case_transition``.

    new ─▶ in_review ─▶ awaiting_approval ─▶ decided ─▶ closed
     │        │  ▲              │
     │        ▼  │              ▼
     │       new (released)   in_review (sent back)
     └────────────▶ closed (merged or withdrawn)
"""

from .models import Case

State = Case.State

TRANSITIONS: dict[str, frozenset[str]] = {
    State.NEW: frozenset({State.IN_REVIEW, State.CLOSED}),
    State.IN_REVIEW: frozenset({State.NEW, State.AWAITING_APPROVAL, State.DECIDED}),
    State.AWAITING_APPROVAL: frozenset({State.DECIDED, State.IN_REVIEW}),
    State.DECIDED: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


class InvalidCaseTransition(Exception):
    """A move the workflow does not allow; the message names both states."""

    def __init__(self, case: Case, to: str):
        super().__init__(f"case {case.pk} cannot go from {case.state} to {to}")
        self.case, self.to = case, to


def case_move_check(case: Case, to: str) -> None:
    """Raise InvalidCaseTransition unless the table allows ``case``'s move to ``to``."""
    if to not in TRANSITIONS[case.state]:
        raise InvalidCaseTransition(case, to)
