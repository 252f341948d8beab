"""PostgreSQL array literals for the set-based writers (grouping, the audit sequencer and bulk append).

Those statements pass a batch's values as a few array parameters (``unnest(%s::bigint[], …)``) instead of
thousands of placeholders. Handed a Python list, psycopg's client-side binding (Django's default) quotes
the list element by element in Python, with a regular expression per element: for a 1,000-flag grouping
batch that was a third of the grouping task's Python time (issue 8). These build the same literal with one
``str.join``; the driver then passes it as one string, and PostgreSQL parses it in C (``array_in``).
The cast in the statement (``%s::bigint[]``) gives the element type. Here, at the lowest layer, because the
audit app uses them too and it may use nothing above it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def ints(values: Iterable[int | None]) -> str:
    """``{1,2,NULL}`` for ``::bigint[]`` / ``::integer[]``."""
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"


def _float(value: float | None) -> str:
    if value is None:
        return "NULL"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def floats(values: Iterable[float | None]) -> str:
    """``{0.5,1e-05,NULL}`` for ``::float8[]`` (repr round-trips every double exactly)."""
    return "{" + ",".join(_float(v) for v in values) + "}"


def _text(value: str | None) -> str:
    if value is None:
        return "NULL"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def texts(values: Iterable[str | None]) -> str:
    """``{"a","b \\"c\\"",NULL}`` for ``::text[]`` (and anything cast from text: timestamptz, jsonb)."""
    return "{" + ",".join(_text(v) for v in values) + "}"
