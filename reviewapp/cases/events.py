"""Domain events: the one named seam between apps (DESIGN.md "Layout").

``decision_overturned`` is sent by ``services.decisions.decision_reverse_on_appeal`` inside the
transaction that reverses the decision, with ``decision`` (the reversed Decision), ``appeal_id`` and
``actor``. A receiver's writes therefore commit or roll back with the reversal. Receivers:
``reviewapp.forum.receivers.withdraw_on_overturn`` (connected in ``ForumConfig.ready()``) withdraws what was
shared with the Forum about the account (DESIGN.md invariant 6).
"""

from django.dispatch import Signal

decision_overturned = Signal()
