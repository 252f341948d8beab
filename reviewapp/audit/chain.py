"""The hash of one link: ``sha256(prev_hash ‖ RFC 8785 canonical JSON of the event)``.

Kept free of the database so that ``record`` (which writes) and ``chain_verify`` (which reads) can
only ever compute the same thing.
"""

from __future__ import annotations

import hashlib
import re
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


def hashable_data_check(text: str) -> None:
    """Refuse event data RFC 8785 cannot canonicalise (integers beyond ±2^53), in the writer's transaction.

    Such data would otherwise be stored and then stop the sequencer at that event for everyone. The
    full check runs only when the JSON text holds a run of 16 or more digits, so ordinary events cost a
    regex scan.
    """
    if not _LONG_DIGITS.search(text):
        return
    import json

    try:
        rfc8785.dumps(json.loads(text))
    except rfc8785.CanonicalizationError as error:
        raise ValueError(f"audit event data cannot be hashed (RFC 8785): {error}; "
                         "store such numbers as strings") from error


_LONG_DIGITS = re.compile(r"\d{16,}")


def canonical_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def link_hash(*, prev_hash: str, fields: dict) -> str:
    payload = {name: fields[name] for name in HASHED_FIELDS}
    payload["created_at"] = canonical_timestamp(payload["created_at"])
    return hashlib.sha256(prev_hash.encode("ascii") + rfc8785.dumps(payload)).hexdigest()
