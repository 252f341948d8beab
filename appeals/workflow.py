"""The appeal workflow as a transition table (STYLE.md "Workflow state"), applied only by
``services.appeal_transition``, which writes the ``appeal.transitioned`` audit event of each move.

    filed ─▶ in_review ─▶ info_requested   (the reviewer asks the holder)
                 │  ▲           │
                 │  └───────────┤          (the holder replies)
                 ▼              ▼
              decided ◀─────────┘          (upheld, overturned or modified: Appeal.outcome)

An appeal is filed in ``filed`` (appeal_file); claiming it puts it in review; ``decided`` is final.
"""

from __future__ import annotations

from reviewapp.cases.workflow import InvalidTransition, move_check

from .models import Appeal

State = Appeal.State

TRANSITIONS: dict[str, frozenset[str]] = {
    State.FILED: frozenset({State.IN_REVIEW}),
    State.IN_REVIEW: frozenset({State.INFO_REQUESTED, State.DECIDED}),
    State.INFO_REQUESTED: frozenset({State.IN_REVIEW, State.DECIDED}),
    State.DECIDED: frozenset(),
}


class InvalidAppealTransition(InvalidTransition):
    noun = "appeal"


def appeal_move_check(appeal: Appeal, to: str) -> None:
    """Raise InvalidAppealTransition unless the table allows ``appeal``'s move to ``to``."""
    move_check(TRANSITIONS, appeal, to, InvalidAppealTransition)
