"""The hash of one link: ``sha256(prev_hash ‖ RFC 8785 canonical JSON of the event)``.

Kept free of the database so that ``record`` (which writes) and ``chain_verify`` (which reads) can
only ever compute the same thing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import rfc8785

GENESIS_HASH = "0" * 64

# The fields that are hashed, in the order they are listed in exports. prev_hash is prepended.
HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_type",
    "actor_id",
    "actor_display",
    "action",
    "target_type",
    "target_id",
    "data",
)


def canonical_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def link_hash(*, prev_hash: str, fields: dict) -> str:
    payload = {name: fields[name] for name in HASHED_FIELDS}
    payload["created_at"] = canonical_timestamp(payload["created_at"])
    return hashlib.sha256(prev_hash.encode("ascii") + rfc8785.dumps(payload)).hexdigest()
