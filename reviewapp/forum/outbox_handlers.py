"""Outbox kinds of Forum sharing (found by ``OutboxConfig.ready`` through autodiscovery of this module).

``forum_push`` {"push_id"}: send one ForumPush (services.forum_push_deliver). ``forum_status`` {"push_id"}:
follow its TAXII status resource until complete (services.forum_push_follow_status); while the hub says
pending, the handler raises and the outbox retries with back-off. ``forum_delete`` {"push_id"}: once a withdrawal
is accepted, delete the user-account SCOs nothing of ours lists any more (services.forum_push_delete_scos).
"""

from __future__ import annotations

from typing import Any

from reviewapp.outbox.handlers import register


def _validate(payload: dict[str, Any]) -> None:
    if set(payload) != {"push_id"} or type(payload["push_id"]) is not int or payload["push_id"] < 1:
        raise ValueError("forum payload: exactly {'push_id': <positive integer>}")


@register("forum_push", validate=_validate)
def deliver_forum_push(message) -> None:
    from .services import forum_push_deliver

    forum_push_deliver(push_id=message.payload["push_id"])


@register("forum_status", validate=_validate)
def follow_forum_status(message) -> None:
    from .services import forum_push_follow_status

    forum_push_follow_status(push_id=message.payload["push_id"])


@register("forum_delete", validate=_validate)
def delete_forum_scos(message) -> None:
    from .services import forum_push_delete_scos

    forum_push_delete_scos(push_id=message.payload["push_id"])
