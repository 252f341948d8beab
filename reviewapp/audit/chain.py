"""The hash of one link: ``sha256(prev_hash ‖ RFC 8785 canonical JSON of the event)``.

Kept free of the database so that ``record`` (which checks), the sequencer (which writes) and ``chain_verify``
(which reads) can only ever compute the same thing: every one of them canonicalises through ``canonical_json``.
"""

from __future__ import annotations

import hashlib
import json
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

# RFC 8785 integers: what an IEEE 754 double holds exactly (rfc8785 refuses the rest).
_INT_MIN, _INT_MAX = -(2**53) + 1, 2**53 - 1
# Keys sorted, no whitespace, UTF-8, only '"', '\' and control characters escaped (\b \t \n \f \r, else
# \u00xx in lower case): RFC 8785's rules, for the values _c_encoder_agrees admits. Built once: json.dumps
# with options builds a new encoder per call.
_C_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value) -> bytes:
    """The RFC 8785 canonical JSON of ``value``: always exactly what ``rfc8785.dumps(value)`` returns or raises.

    ``rfc8785`` is pure Python, about 5× slower than json's C encoder on an audit event. Where both are sure
    to write the same bytes (``_c_encoder_agrees``) the C encoder writes them; anything else (a whole or
    exponent float, an integer beyond ±2^53, a key beyond the BMP, a subclass, a type json does not know,
    nesting deeper than ``_C_ENCODER_DEPTH``) goes to ``rfc8785``, and so does a lone surrogate (UTF-8 refuses
    it, and rfc8785 raises its own error).
    """
    if _c_encoder_agrees(value, 0):
        try:
            return _C_ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass
    return rfc8785.dumps(value)


# Audit data nests a few levels; deeper values (and cycles) go to rfc8785, which decides how deep is too deep.
_C_ENCODER_DEPTH = 32


def _c_encoder_agrees(value, depth: int) -> bool:
    """Whether ``_C_ENCODER`` writes ``value`` as rfc8785 does (for strings, once UTF-8 accepts them).

    Checked against rfc8785's implementation, type by exact type (a subclass may write itself otherwise):
    - ``None``, ``True``, ``False``, lists and tuples (arrays, both) of such values: the same text.
    - ``str``: both escape ``"``, ``\\``, ``\\b \\t \\n \\f \\r`` by name and the other control characters
      as ``\\u00xx`` in lower case, and write everything else as it is, in UTF-8; both refuse a lone surrogate.
    - ``int`` within ±(2^53 − 1): ``str(n)`` in both; beyond it rfc8785 refuses.
    - ``float``: json writes ``repr(f)``; rfc8785 writes ``str(f)`` (the same) but rewritten: no ``.0`` on a
      whole number, ``0`` for ±0.0, exponents without a leading zero, or as digits below e21 (1e+16 as
      10000000000000000). So only a float whose ``repr`` has a ``.``, no ``e`` and no ``.0`` end (0.5,
      -3.25), which rfc8785 leaves as it is; not 1.0, 0.0, 1e-07, 1e+16, 1e+21, inf or nan.
    - ``dict`` with ``str`` keys in the BMP: RFC 8785 sorts keys by UTF-16 code units, json by code points;
      the two orders differ only where a character beyond U+FFFF (a surrogate pair in UTF-16) meets one of
      U+E000…U+FFFF at the same place in two keys.
    """
    kind = type(value)
    if kind is str or value is None or value is True or value is False:
        return True
    if kind is int:
        return _INT_MIN <= value <= _INT_MAX
    if depth == _C_ENCODER_DEPTH:
        return kind is float and _float_agrees(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or max(key) <= "\uffff"):
                return False
            if type(item) is not str and not _c_encoder_agrees(item, depth + 1):
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(item) is str or _c_encoder_agrees(item, depth + 1) for item in value)
    return kind is float and _float_agrees(value)


def _float_agrees(number: float) -> bool:
    text = repr(number)
    return "." in text and "e" not in text and not text.endswith(".0")


def hashable_data_check(text: str) -> None:
    """Refuse event data RFC 8785 cannot canonicalise (integers beyond ±2^53), in the writer's transaction.

    Such data would otherwise be stored and then stop the sequencer at that event for everyone. The
    full check runs only when the JSON text holds a run of 16 or more digits, so ordinary events cost a
    regex scan.
    """
    if not _LONG_DIGITS.search(text):
        return
    try:
        canonical_json(json.loads(text))
    except rfc8785.CanonicalizationError as error:
        raise ValueError(f"audit event data cannot be hashed (RFC 8785): {error}; "
                         "store such numbers as strings") from error


_LONG_DIGITS = re.compile(r"\d{16,}")


def canonical_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# canonical_timestamp written by PostgreSQL, for a timestamptz column: the same text for every moment a datetime
# holds (years 1…9999, zero-padded to four digits by YYYY; microseconds, PostgreSQL's precision, to six by US).
# Readers of many rows select it to spare Python a datetime parse and a conversion per row.
CANONICAL_TIMESTAMP_SQL = """to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


_HASHED_AS_GIVEN = tuple(name for name in HASHED_FIELDS if name != "created_at")


def _digest(prev_hash: str, fields: dict, created_at: str) -> str:
    payload = {name: fields[name] for name in _HASHED_AS_GIVEN}
    payload["created_at"] = created_at
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(payload)).hexdigest()


def link_hash(*, prev_hash: str, fields: dict, canonical_created_at: str | None = None) -> str:
    """``sha256(prev_hash ‖ canonical_json(fields))``, created_at as ``canonical_timestamp`` writes it.

    ``canonical_created_at``, when given, is that text as the caller already has it (``CANONICAL_TIMESTAMP_SQL``);
    ``fields["created_at"]`` is then not read.
    """
    return _digest(prev_hash, fields, canonical_created_at or canonical_timestamp(fields["created_at"]))


def link_hash_matches(*, prev_hash: str, fields: dict, stored: str, canonical_created_at: str | None = None) -> bool:
    """Whether ``stored`` is ``link_hash(prev_hash=prev_hash, fields=fields)``, for the verifier of a long chain.

    ``canonical_created_at``, when given, is ``canonical_timestamp(fields["created_at"])`` as the caller already
    has it (the database can write it), sparing a conversion per row. A match with it is a match: bytes that hash
    alike are, short of a SHA-256 collision, the same bytes, so that text is the one the sequencer hashed. A wrong
    one only costs a second look, with ``link_hash`` itself, so the answer is always ``link_hash``'s.
    """
    if canonical_created_at is not None and _digest(prev_hash, fields, canonical_created_at) == stored:
        return True
    return link_hash(prev_hash=prev_hash, fields=fields) == stored
