"""The actions a decision can take, mildest first. A clause lists the ones it permits."""

from django.db import models


class Action(models.TextChoices):
    NO_VIOLATION = "no_violation", "No violation"
    WARN = "warn", "Warning"
    RATE_LIMIT = "rate_limit", "Rate limit"
    SUSPEND = "suspend", "Suspension"
    TERMINATE = "terminate", "Termination"


# Mildest first: "a lesser action" (appeal outcome "modified") is one earlier in this order.
SEVERITY_ORDER: tuple[Action, ...] = (
    Action.NO_VIOLATION, Action.WARN, Action.RATE_LIMIT, Action.SUSPEND, Action.TERMINATE,
)
# Actions that restrict the account for a time and need a duration.
TIMED_ACTIONS = frozenset({Action.RATE_LIMIT, Action.SUSPEND})


def is_lesser(action: str, than: str) -> bool:
    return SEVERITY_ORDER.index(Action(action)) < SEVERITY_ORDER.index(Action(than))
