"""The Forum app's one receiver of a lower app's event (DESIGN.md "Layout": the one named seam).

``withdraw_on_overturn`` listens to ``reviewapp.cases.events.decision_overturned`` (sent inside the transaction
that reverses a decision on appeal, also when an appeal replaces it by a lesser action) and withdraws, without
waiting for anyone, everything we shared with the Forum about that account (services.shares_withdraw_for_account;
DESIGN.md invariant 6). Its writes commit or roll back with the reversal; the revoked versions leave through the
outbox, so a hub that is down delays them and never loses them. Connected in ``ForumConfig.ready()``.
"""

from __future__ import annotations

from reviewapp.audit.services import SYSTEM


def withdraw_on_overturn(sender, *, decision, appeal_id, actor=None, **kwargs) -> None:
    from .services import shares_withdraw_for_account

    shares_withdraw_for_account(
        account=decision.account, decision=decision, appeal_id=appeal_id, actor=SYSTEM,
        reason=f"Decision {decision.pk} was overturned on appeal {appeal_id}.")
