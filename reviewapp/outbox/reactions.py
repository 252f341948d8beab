"""What the outbox does when an app below it asks for an external effect through a domain signal.

``witness_copy``: a signed audit checkpoint's copy for the witness (``reviewapp.audit.events.checkpoint_signed``)
becomes an outbox row of kind ``witness`` in the checkpoint's own transaction. Connected in OutboxConfig.ready().
"""

from reviewapp.audit.services import Target

from .services import outbox_enqueue


def witness_copy(sender, *, checkpoint, kind: str, **_) -> None:
    outbox_enqueue(kind=kind, payload=checkpoint.as_json(), idempotency_key=f"audit-checkpoint-{checkpoint.seq}",
                   target=Target(type="audit.checkpoint", id=str(checkpoint.seq)))
