"""Reads of the audit explorer: a filtered, keyset-paged list of events, and one event with what it names.

Why keyset pages and no total: the trail grows by millions of rows, and ``Paginator`` counts every match on
every page view (a full scan once a search or an actor filter is in play) and pays for deep pages with
OFFSET. A page here is ``WHERE id < <last id shown> … ORDER BY id DESC LIMIT 51`` on the primary key: one
query, as cheap on page 10,000 as on page 1 (a data search: below).

Why the data search is what it is (``search``):
- ``key=value`` is a JSONB containment, ``data @> '{"key": value}'`` — exact, typed (``case=12`` matches the
  number 12, ``account="12"`` the text), and answerable from a GIN index on ``data`` should the trail's owner
  add one (``jsonb_path_ops``); the value is a bound parameter, never SQL.
- Anything else is a case-insensitive substring of the event's data as JSON text (``data::text``, Django's
  ``icontains``, which escapes ``%``, ``_`` and ``\\``: the officer's text is matched literally).

Neither has an index to answer it here (no GIN or trigram index on ``data``), and PostgreSQL, which expects
few matches, plans a whole-table scan and a sort for "the newest 51 matches". So a search walks the trail
down from the newest event in windows of SEARCH_WINDOW ids: each window is one range scan of the primary key,
newest first, that stops at the page's last match. A common text fills its page from the first window (a few
milliseconds on any size of trail); a rare one is searched window after window until SEARCH_BUDGET_SECONDS
is spent, and the page then shows what it found and how far down it searched, "Older" going on from there.
Each window's query also runs under ``SET LOCAL statement_timeout`` (SEARCH_TIMEOUT_MS), a backstop: the page
then says to narrow the search. The other filters still apply inside each window, and a date range, action or
target alone is answered by its index in one query.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.db import OperationalError, connection, transaction
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from reviewapp.audit.models import AuditEvent

from ..records.history import Subject, history_condition

PAGE_SIZE = 50
SEARCH_WINDOW = 50_000  # events (by id) per range scan of a data search
SEARCH_BUDGET_SECONDS = 2.0  # a page's data search stops starting windows after this
SEARCH_TIMEOUT_MS = 5000  # and no one window's query runs longer than this
SEARCH_MAX_LENGTH = 200
# key=value: a JSON object key (letters, digits, _ . -) and a value that is JSON if it parses, else text.
_CONTAINMENT = re.compile(r"^\s*([A-Za-z_][\w.-]{0,63})\s*=\s*(.+?)\s*$", re.DOTALL)


class SearchTooSlow(Exception):
    """The data search ran past SEARCH_TIMEOUT_MS: narrow it."""


@dataclass(frozen=True)
class EventFilters:
    actor: str = ""  # a user id, or part of the actor's name as recorded
    actor_type: str = ""
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    search: str = ""
    # A thing's history: its events and those of everything under it (records.history), e.g. a case's.
    within: Subject | None = None


@dataclass
class EventPage:
    events: list[AuditEvent]
    before: int | None  # the id this page starts below (None: the newest)
    next_before: int | None  # the id the next (older) page starts below, None when this is the last
    newer: bool = field(default=False)  # whether a newer page exists (this is not the first)
    # A data search that spent its time budget before filling the page: the id it searched down to.
    searched_down_to: int | None = None


def _search(events: QuerySet[AuditEvent], text: str) -> QuerySet[AuditEvent]:
    """Events whose data matches a search text (module docstring): containment for ``key=value``, else a
    literal, case-insensitive substring of the data's JSON text (Django escapes the LIKE wildcards)."""
    match = _CONTAINMENT.match(text)
    if match:
        key, raw = match.groups()
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        return events.filter(data__contains={key: value})
    return events.annotate(data_text=Cast("data", TextField())).filter(data_text__icontains=text)


def _filtered(filters: EventFilters) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if filters.actor:
        actor = Q(actor_display__icontains=filters.actor)
        events = events.filter(actor | Q(actor_id=filters.actor) if filters.actor.isdigit() else actor)
    given = {"actor_type": filters.actor_type, "action": filters.action, "target_type": filters.target_type,
             "target_id": filters.target_id, "created_at__gte": filters.since, "created_at__lt": filters.until}
    events = events.filter(**{lookup: value for lookup, value in given.items() if value})
    if filters.within is not None:
        events = events.filter(history_condition(filters.within))
    if filters.search:
        events = _search(events, filters.search)
    return events


def events_page(filters: EventFilters, *, before: int | None = None, page_size: int = PAGE_SIZE) -> EventPage:
    """One page of matching events, newest first, below the event id ``before`` (one query without a data
    search; with one, a query per window of SEARCH_WINDOW events searched, within SEARCH_BUDGET_SECONDS).

    Raises SearchTooSlow when one window's query runs past SEARCH_TIMEOUT_MS.
    """
    events = _filtered(filters)
    if filters.search:
        return _search_page(events, before=before, page_size=page_size)
    if before is not None:
        events = events.filter(pk__lt=before)
    rows = list(events.order_by("-pk")[: page_size + 1])
    more = len(rows) > page_size
    rows = rows[:page_size]
    return EventPage(events=rows, before=before, next_before=rows[-1].pk if more else None, newer=before is not None)


def _search_page(events: QuerySet[AuditEvent], *, before: int | None, page_size: int) -> EventPage:
    """A data search walks the trail down from ``before`` in windows of ids (module docstring): each window is a
    range scan of the primary key that stops at the page's last match, so a common text fills its page from the
    newest window, and a rare one is searched window after window until the time budget is spent; then the
    page shows what it found and where it stopped, and "Older" goes on from there."""
    ceiling = before if before is not None else (
        (AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1)
    found: list[AuditEvent] = []
    deadline = time.monotonic() + SEARCH_BUDGET_SECONDS
    while ceiling > 1:
        floor = max(ceiling - SEARCH_WINDOW, 1)
        window = events.filter(pk__lt=ceiling, pk__gte=floor).order_by("-pk")[: page_size + 1 - len(found)]
        found += _with_timeout(window)
        if len(found) > page_size:
            page = found[:page_size]
            return EventPage(events=page, before=before, next_before=page[-1].pk, newer=before is not None)
        ceiling = floor
        if ceiling > 1 and time.monotonic() > deadline:
            return EventPage(events=found, before=before, next_before=ceiling, newer=before is not None,
                             searched_down_to=ceiling)
    return EventPage(events=found, before=before, next_before=None, newer=before is not None)


def _with_timeout(query: QuerySet[AuditEvent]) -> list[AuditEvent]:
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(SEARCH_TIMEOUT_MS)}")
            return list(query)
    except OperationalError as exc:
        if "statement timeout" not in str(exc):
            raise
        raise SearchTooSlow from exc


@dataclass(frozen=True)
class ChainNeighbours:
    previous: AuditEvent | None
    next: AuditEvent | None


def chain_neighbours(event: AuditEvent) -> ChainNeighbours:
    """The events just before and after this one in the chain (one query); none before it is sequenced."""
    if event.seq is None:
        return ChainNeighbours(None, None)
    around = {e.seq: e for e in AuditEvent.objects.filter(seq__in=[event.seq - 1, event.seq + 1])
              .only("pk", "seq", "action", "created_at")}
    return ChainNeighbours(around.get(event.seq - 1), around.get(event.seq + 1))


# Keys of event data whose whole-number values (or lists of them) are ids of a target type.
DATA_ID_KEYS: dict[str, str] = {
    "case": "cases.case", "case_id": "cases.case", "cases": "cases.case",
    "decision": "cases.decision", "decision_id": "cases.decision", "decisions": "cases.decision",
    "replaces": "cases.decision", "replaced_by": "cases.decision",
    "appeal": "appeals.appeal", "appeal_id": "appeals.appeal", "appeals": "appeals.appeal",
    "statement": "cases.statementofreasons", "statement_id": "cases.statementofreasons",
    "proposal": "forum.shareproposal", "proposal_id": "forum.shareproposal",
    "share": "forum.shareproposal", "share_id": "forum.shareproposal",
    "push": "forum.forumpush", "push_id": "forum.forumpush",
    "flag": "flags.flag", "flag_id": "flags.flag", "flags": "flags.flag",
    "user": "people.user", "user_id": "people.user", "started_by": "people.user",
    "campaign": "cases.campaign", "campaign_id": "cases.campaign",
    "detector_id": "flags.detector",
    # Places in the chain (a checkpoint's signed head, a break) are the events at those seqs.
    "head_seq": "audit.checkpoint", "broken_seq": "audit.checkpoint",
    "run": "compliance_verification.verificationrun",
}
MAX_NAMED = 50  # a grouping event names thousands of flags: link the first ones and count the rest


@dataclass(frozen=True)
class Named:
    key: str  # the data key it was found under ("" for the event's target)
    target_type: str
    target_id: str


def _whole_numbers(value) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, int) and not isinstance(item, bool)]
    return []


def named_in(event: AuditEvent) -> tuple[list[Named], int]:
    """What an event names: its target, then the ids in its data under the keys of DATA_ID_KEYS (at any depth),
    in order, each once; at most MAX_NAMED, and how many more there were."""
    named: list[Named] = []
    seen: set[tuple[str, str]] = set()
    more = 0

    def add(key: str, target_type: str, target_id: str) -> None:
        nonlocal more
        if (target_type, target_id) in seen:
            return
        seen.add((target_type, target_id))
        if len(named) < MAX_NAMED:
            named.append(Named(key, target_type, target_id))
        else:
            more += 1

    if event.target_type:
        add("", event.target_type, event.target_id)
    stack = [event.data] if isinstance(event.data, dict) else []
    while stack:
        current = stack.pop(0)
        for key, value in current.items():
            if key in DATA_ID_KEYS:
                for pk in _whole_numbers(value):
                    add(key, DATA_ID_KEYS[key], str(pk))
            if isinstance(value, dict):
                stack.append(value)
            elif isinstance(value, list):
                stack.extend(item for item in value if isinstance(item, dict))
    return named, more
