"""The audit app's one domain signal, for the apps above it (audit uses nothing of ours: DESIGN.md's layers).

``checkpoint_signed`` is sent inside the transaction that recorded a signed checkpoint, when a witness is
configured, with ``checkpoint`` (``checkpoints.Checkpoint``: sequence, head hash, time, key id, signature),
``witness_url`` and ``kind`` (the outbox kind). Its one receiver, ``reviewapp.outbox.receivers.witness_copy``,
queues the witness copy in the outbox in that same transaction: the copy leaves if and only if the checkpoint's
event commits.
"""

from django.dispatch import Signal

checkpoint_signed = Signal()
