"""The flag contract, schema v1 (DESIGN.md "Contracts"), validated by msgspec (compiled, not per-field Python).

Each item of a batch is decoded on its own, so one bad item never blocks the good ones, and each
rejection names the field and the reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from reviewapp.cases.evidence import MAX_EVIDENCE_DEPTH, json_depth
from reviewapp.cases.vocabulary import Signal

MAX_FLAGS_PER_REQUEST = 5000
MAX_EVIDENCE_BYTES = 64 * 1024
# What the pipeline can hold (issue 8): observation times in this range once their offset is applied
# (PostgreSQL, Python and the priority formula all handle it), and request counts so bounded that the
# sum over millions of flags of one case still fits a bigint (the case total saturates beyond that).
OBSERVED_MIN = datetime(2000, 1, 1, tzinfo=UTC)
OBSERVED_MAX = datetime(2100, 1, 1, tzinfo=UTC)
MAX_REQUEST_COUNT = 10**12
MAX_EXCERPTS = 20
MAX_EXCERPT_CHARS = 2000

SignalSlug = Literal[tuple(Signal.values)]  # type: ignore[valid-type]
Text = Annotated[str, Meta(min_length=1, max_length=200)]
# A detector's slug: the contract's `detector` field and the Detector form share this one rule.
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
Slug = Annotated[str, Meta(pattern=SLUG_PATTERN, min_length=1, max_length=64)]
AwareDateTime = Annotated[datetime, Meta(tz=True)]


class FlagV1(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    external_id: Text
    detector: Slug
    detector_version: Annotated[str, Meta(min_length=1, max_length=64)]
    account_id: Annotated[str, Meta(min_length=1, max_length=128)]
    organization_id: Annotated[str, Meta(max_length=128)] | None = None
    signal: SignalSlug
    score: Annotated[float, Meta(ge=0, le=1)]
    observed_from: AwareDateTime
    observed_to: AwareDateTime
    request_count: Annotated[int, Meta(ge=0, le=MAX_REQUEST_COUNT)] | None = None
    cluster_id: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    evidence: dict[str, Any] | None = None


_decoder = msgspec.json.Decoder(FlagV1)
_TEXT_FIELDS = ("external_id", "detector_version", "account_id", "organization_id", "cluster_id")
_encoder = msgspec.json.Encoder(order="deterministic")
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_FIELD_IN_MESSAGE = re.compile(r"field `([^`]+)`")


class ItemErrors(Exception):
    """One item's problems as ``{"field": ["why", ...]}``."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


def _reason(message: str) -> str:
    """msgspec's message without its `$.path` suffix, in the quotes the API's answers use."""
    return _PATH.sub("", message).replace("`", "'")


def _errors_from(exc: msgspec.ValidationError | msgspec.DecodeError) -> dict[str, list[str]]:
    message = str(exc)
    match = _PATH.search(message)
    path = match.group(1) if match else ""
    reason = _PATH.sub("", message)
    if not path:
        named = _FIELD_IN_MESSAGE.search(reason)  # "Object missing required field `score`"
        path = named.group(1) if named else "non_field_errors"
    field = re.split(r"[.\[]", path, maxsplit=1)[0] or "non_field_errors"
    if reason.startswith("Object contains unknown field"):
        return {field: [_UNKNOWN_FIELD]}
    if reason.startswith("Object missing required field"):
        return {field: [_REQUIRED]}
    return {field: [_reason(message)]}


_UNKNOWN_FIELD = "unknown field (schema v1 allows only the documented fields)"
_REQUIRED = "this field is required"
_FIELDS = msgspec.structs.fields(FlagV1)
_FIELD_NAMES = frozenset(field.name for field in _FIELDS)


def parse_flag(raw: bytes | msgspec.Raw, *, expected_detector: str | None) -> FlagV1:
    """Decode and check one flag. Raises ItemErrors naming every bad field."""
    # Measured before decoding, without recursion: the decoder and everything after it recurse. An item cannot
    # nest deeper than it has opening brackets, so the scan (most of the per-flag cost when it ran on every
    # item) runs only on items with more brackets than the bound allows levels.
    data = bytes(raw)
    if data.count(b"{") + data.count(b"[") > MAX_EVIDENCE_DEPTH + 1:  # the flag object itself is one level
        depth = json_depth(data)
        if depth > MAX_EVIDENCE_DEPTH + 1:
            field = "evidence" if b'"evidence"' in data else "non_field_errors"
            raise ItemErrors({field: [f"is nested {depth - 1} levels deep; the limit is {MAX_EVIDENCE_DEPTH} levels"]})
    try:
        flag = _decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ItemErrors(_every_error(data, exc, expected_detector)) from None
    except UnicodeDecodeError:
        raise ItemErrors({"non_field_errors": ["a string is not valid UTF-8"]}) from None
    errors = _content_errors(flag, data, expected_detector)
    if errors:
        raise ItemErrors(errors)
    return flag


def _every_error(data: bytes, first: msgspec.ValidationError | msgspec.DecodeError,
                 expected_detector: str | None) -> dict[str, list[str]]:
    """Every problem of an item the compiled decoder refused, not just the first it met (``first``): so a
    detector fixes a bad item in one round. The item is decoded again untyped and each field converted on its
    own, then the checks of ``_content_errors`` run on the fields that converted. Only rejected items come
    here, so the fast path stays the one compiled decode. An item that is no JSON object (or that the untyped
    decoder refuses too) keeps the decoder's one error."""
    try:
        item = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return _errors_from(first)
    if not isinstance(item, dict):
        return _errors_from(first)
    errors: dict[str, list[str]] = {name: [_UNKNOWN_FIELD] for name in item if name not in _FIELD_NAMES}
    values: dict[str, Any] = {}
    for field in _FIELDS:
        if field.name not in item:
            if field.required:
                errors[field.name] = [_REQUIRED]
            continue
        try:
            values[field.name] = msgspec.convert(item[field.name], field.type)
        except msgspec.ValidationError as exc:
            errors[field.name] = [_reason(str(exc))]
    # The fields that converted, None for the others: what _content_errors reads off a decoded flag.
    checked = SimpleNamespace(**{field.name: values.get(field.name) for field in _FIELDS})
    for name, problems in _content_errors(checked, data, expected_detector).items():
        errors.setdefault(name, problems)
    return errors or _errors_from(first)


def _content_errors(flag: FlagV1 | SimpleNamespace, data: bytes, expected_detector: str | None) -> dict[str, list[str]]:
    """The rules the schema's types cannot say, on a decoded item (a field that is None is not checked)."""
    errors: dict[str, list[str]] = {}
    # PostgreSQL text and jsonb cannot hold NUL characters; say so rather than fail on storing. JSON can carry
    # one only as the escape \u0000 (a raw NUL byte is malformed JSON), so text without it is not searched.
    may_hold_nul = b"\\u0000" in data
    if may_hold_nul:
        for name in _TEXT_FIELDS:
            value = getattr(flag, name)
            if value is not None and "\x00" in value:
                errors[name] = ["must not contain NUL (\\u0000) characters"]
    if expected_detector is not None and flag.detector is not None and flag.detector != expected_detector:
        errors["detector"] = [f"'{flag.detector}' does not match this token's detector '{expected_detector}'"]
    observed_from, observed_to = flag.observed_from, flag.observed_to
    # Aware comparisons: the offset is applied, never overflows.
    if observed_from is not None and not OBSERVED_MIN <= observed_from < OBSERVED_MAX:
        errors["observed_from"] = [_OBSERVED_BOUNDS]
    if observed_to is not None and not OBSERVED_MIN <= observed_to < OBSERVED_MAX:
        errors["observed_to"] = [_OBSERVED_BOUNDS]
    elif observed_from is not None and observed_to is not None and observed_from > observed_to:
        errors["observed_to"] = ["must not be earlier than observed_from"]
    if flag.evidence is not None:
        problems = _evidence_errors(flag.evidence, may_hold_nul=may_hold_nul)
        if problems:
            errors["evidence"] = problems
    return errors


_OBSERVED_BOUNDS = (f"must lie from {OBSERVED_MIN:%Y-%m-%dT%H:%M:%SZ} up to (not including) "
                    f"{OBSERVED_MAX:%Y-%m-%dT%H:%M:%SZ} once its UTC offset is applied")


def _evidence_errors(evidence: dict[str, Any], *, may_hold_nul: bool = True) -> list[str]:
    problems = []
    encoded = _encoder.encode(evidence)
    size = len(encoded)
    if may_hold_nul and b"\\u0000" in encoded:
        problems.append("must not contain NUL (\\u0000) characters")
    if size > MAX_EVIDENCE_BYTES:
        problems.append(f"is {size} bytes of JSON; the limit is {MAX_EVIDENCE_BYTES}")
    excerpts = evidence.get("excerpts")
    if excerpts is not None:
        if type(excerpts) is not list or not all(type(e) is str for e in excerpts):
            problems.append("excerpts must be a list of strings")
        else:
            if len(excerpts) > MAX_EXCERPTS:
                problems.append(f"has {len(excerpts)} excerpts; the limit is {MAX_EXCERPTS}")
            if any(len(e) > MAX_EXCERPT_CHARS for e in excerpts):
                long = [i for i, e in enumerate(excerpts) if len(e) > MAX_EXCERPT_CHARS]
                problems.append(f"excerpts {long} are longer than {MAX_EXCERPT_CHARS} characters")
    return problems


def canonical_bytes(flag: FlagV1) -> bytes:
    """The flag as canonical JSON (sorted keys): equal content, equal bytes, whatever the sender's layout."""
    return _encoder.encode(flag)


class BodyError(ValueError):
    """The request body as a whole is unusable (not JSON, wrong top-level shape, too many flags)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def split_body(body: bytes) -> list[msgspec.Raw]:
    """A body is one flag object or ``{"flags": [...]}``; returns each item still undecoded."""
    try:
        top = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    except RecursionError:  # deeper than the decoder goes: split without it, and reject the deep items one by one
        return _checked_items(_split_deep(body))
    except msgspec.ValidationError:
        raise BodyError("the body must be a JSON object: one flag, or {\"flags\": [...]}") from None
    except msgspec.DecodeError as exc:
        raise BodyError(f"the body is not valid JSON: {exc}") from None
    if not top:
        raise BodyError("the body is an empty object: no flags (send one flag, or {\"flags\": [...]})")
    if "flags" not in top:
        return [msgspec.Raw(body)]
    if len(top) != 1:
        extra = sorted(set(top) - {"flags"})
        raise BodyError(f"a batch is {{\"flags\": [...]}} with nothing beside it; unexpected keys: {extra}")
    try:
        items = msgspec.json.decode(top["flags"], type=list[msgspec.Raw])
    except RecursionError:
        items = _split_deep(body)
    except msgspec.ValidationError:
        raise BodyError("\"flags\" must be a list of flag objects") from None
    return _checked_items(items)


def _checked_items(items: list[msgspec.Raw]) -> list[msgspec.Raw]:
    if len(items) > MAX_FLAGS_PER_REQUEST:
        raise BodyError(
            f"{len(items)} flags in one request; the limit is {MAX_FLAGS_PER_REQUEST} — split the batch", status=413
        )
    if not items:
        raise BodyError("\"flags\" is empty")
    return items


_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)
_TOO_DEEP = (f"the body is nested too deeply to read; a flag's evidence may be nested at most {MAX_EVIDENCE_DEPTH} "
             "levels")


def _split_deep(body: bytes) -> list[msgspec.Raw]:
    """Split a body too deep for the decoder into its items, iteratively: one flag object, or the elements of
    ``{"flags": [...]}``. Each item is then checked on its own (parse_flag rejects a deep one by name)."""
    data = body.strip()
    tokens = list(_STRUCTURE.finditer(data))
    if not tokens or tokens[0].group() != b"{" or data[-1:] != b"}":
        raise BodyError(_TOO_DEEP)
    # Is it a batch? Its first key at depth 1 is "flags", followed by ':' and '['.
    if not (len(tokens) >= 4 and tokens[1].group() == b'"flags"' and tokens[2].group() == b":"
            and tokens[3].group() == b"["):
        return [msgspec.Raw(data)]
    items: list[msgspec.Raw] = []
    depth, start = 2, tokens[3].end()
    for token in tokens[4:]:
        text = token.group()
        if text in (b"[", b"{"):
            depth += 1
        elif text in (b"]", b"}"):
            depth -= 1
            if depth == 1:  # the end of the flags array
                last = data[start:token.start()].strip()
                if last:
                    items.append(msgspec.Raw(last))
                rest = data[token.end():].strip()
                if rest != b"}":
                    raise BodyError("a batch is {\"flags\": [...]} with nothing beside it")
                return items
        elif text == b"," and depth == 2:
            items.append(msgspec.Raw(data[start:token.start()].strip()))
            start = token.end()
    raise BodyError(_TOO_DEEP)
