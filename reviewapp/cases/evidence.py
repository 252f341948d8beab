"""Flag evidence as staff see it: measured and shown without recursion, however deep it is stored.

Intake (flags.schema) refuses evidence nested deeper than ``MAX_EVIDENCE_DEPTH``, but rows stored before
that bound existed may be nested hundreds of levels deep. Python's JSON decoder, ``repr`` and the template
engine all recurse, so such a row used to answer 500 on every page that showed it. Here depth is measured
by an iterative scan of the JSON text, and only evidence within the bound is ever decoded; deeper
evidence is shown as its JSON text.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

MAX_EVIDENCE_DEPTH = 32
# The key of the marker that replaces a flag's whole evidence once the retention purge removed it
# (flags.retention; DESIGN.md invariant 8): {"removed_under_retention": {"at": <ISO time>, "excerpts": <count>}}.
RETENTION_MARKER = "removed_under_retention"
# Shown as JSON text beyond this many characters only in part (the rest is elided, and says so).
MAX_SHOWN_CHARS = 20_000

# One token of JSON that matters for depth: a whole string (skipped, escapes included) or a bracket.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset(b"[{")


def json_depth(text: bytes | str) -> int:
    """How deeply the JSON ``text`` nests arrays and objects (a scalar is 0, ``{}`` is 1). No recursion.

    Cheap on ordinary flags: text with few brackets cannot be deep, and is not scanned at all.
    """
    data = text.encode() if isinstance(text, str) else bytes(text)
    brackets = data.count(b"{") + data.count(b"[")
    if brackets <= 1:
        return brackets
    depth = deepest = 0
    for match in _TOKEN.finditer(data):
        first = match.group()[0]
        if first in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif first != 0x22:  # '"': a string, skipped whole
            depth -= 1
    return deepest


def evidence_load(text: str | None) -> dict | None:
    """The evidence as a dict when it is within the depth bound; ``None`` when absent or too deep."""
    if text is None or json_depth(text) > MAX_EVIDENCE_DEPTH:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def _shown(value) -> str:
    """A detail's value as text: scalars as they are, nested values as compact JSON (within the bound)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _removed(body: dict) -> dict | None:
    """The retention marker as the page shows it ({"at": datetime or None, "excerpts": int}), or None."""
    marker = body.get(RETENTION_MARKER) if isinstance(body, dict) and len(body) == 1 else None
    if not isinstance(marker, dict):
        return None
    try:
        at = datetime.fromisoformat(marker.get("at") or "")
    except (TypeError, ValueError):
        at = None
    excerpts = marker.get("excerpts")
    return {"at": at, "excerpts": excerpts if isinstance(excerpts, int) else 0}


def evidence_for_display(flags: list[dict]) -> list[dict]:
    """Add what the evidence template shows to each flag of an audited evidence read.

    Each flag gets ``excerpts`` (a list of strings), ``details`` (the other keys, values as stored: the
    template shows them through the ``readable`` filter: lists as "a, b", None as "—", booleans as yes/no) and, for
    evidence nested deeper than the bound, ``too_deep`` (its depth) with ``raw_json`` (its text, elided
    past ``MAX_SHOWN_CHARS``).
    """
    for flag in flags:
        body = flag.get("evidence")
        text = flag.get("evidence_text")
        flag["detector"] = flag.pop("detector__slug", flag.get("detector"))
        flag["too_deep"], flag["raw_json"], flag["depth_limit"] = 0, "", MAX_EVIDENCE_DEPTH
        if body is None and text is not None:
            flag["too_deep"] = json_depth(text)
            flag["raw_json"] = text if len(text) <= MAX_SHOWN_CHARS else (
                f"{text[:MAX_SHOWN_CHARS]} … ({len(text) - MAX_SHOWN_CHARS} more characters not shown)")
            body = {}
        body = body or {}
        flag["removed"] = _removed(body)
        if flag["removed"]:
            body = {}
        excerpts = body.get("excerpts") or []
        flag["excerpts"] = [e if isinstance(e, str) else _shown(e) for e in excerpts] if isinstance(
            excerpts, list) else [_shown(excerpts)]
        flag["details"] = {key: value for key, value in body.items() if key != "excerpts"}
    return flags
