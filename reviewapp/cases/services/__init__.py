"""Writes for accounts, campaigns and cases. Each writes its audit events in the same transaction."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from reviewapp.audit import sqlarray
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import Entry, Target, record, record_many
from reviewapp.limits import ensure_within_limits

from ..models import Account, Campaign, Case, open_case
from ..predicates import q_sql
from ..priority import SLA_DEFAULT, case_priority, sla_for
from ..vocabulary import queue_for
from ..workflow import TRANSITIONS, InvalidCaseTransition, transition_apply


@transaction.atomic
def case_transition(*, case: Case, to: str, actor, reason: str = "", locked: bool = False,
                    fields: tuple[str, ...] = (), events: list[Entry] | None = None) -> Case:
    """Move a case along the workflow table (workflow.TRANSITIONS); anything else raises InvalidCaseTransition.

    The one home of a case's state change and its ``case.transitioned`` event. ``locked``: the caller holds
    the row lock and passes its instance, whose other changed ``fields`` (a claim's assignee and lease) are
    saved with the state. With ``events`` given, the event is appended for the caller to record in bulk.
    """
    if not locked:
        case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    to = Case.State(to)
    case.closed_at = timezone.now() if to == Case.State.CLOSED else case.closed_at
    return transition_apply(case, table=TRANSITIONS, error=InvalidCaseTransition, to=to, actor=actor,
                            action=AuditAction.CASE_TRANSITIONED, reason=reason,
                            fields=("closed_at", "updated_at", *fields), events=events)


def accounts_ensure(*, accounts: dict[str, str]) -> dict[str, int]:
    """Make sure each flagged account exists ({external_id: organization_id}); return {external_id: pk}.

    An account row records only that the platform account was flagged; its first flag's grouping
    event (``case.opened``) is its audit record.
    """
    # Inserted in one order (sorted) by every grouping transaction, so two that race cannot deadlock.
    ids = sorted(accounts)
    external_ids = sqlarray.texts(ids)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO cases_account (external_id, organization_id, contact_email, region,
                                       researcher_programme, enforcement_status, first_flagged_at)
            SELECT i, o, '', '', false, 'none', now() FROM unnest(%s::text[], %s::text[]) AS t(i, o)
            ON CONFLICT (external_id) DO NOTHING
            """,
            [external_ids, sqlarray.texts(accounts[i] for i in ids)],
        )
        # One array parameter: an ORM "__in" gives each id a placeholder that is parsed again on every call.
        cursor.execute("SELECT external_id, id FROM cases_account WHERE external_id = ANY(%s::text[])", [external_ids])
        return dict(cursor.fetchall())


def campaigns_ensure(*, keys: set[str], actor, events: list[Entry] | None = None) -> dict[str, int]:
    """Return {cluster key: campaign id} for detector cluster keys ("detector-slug:cluster-id"), creating
    (audited, ``campaign.created``) the campaigns that do not exist yet. With ``events`` given, the events
    are appended to it for the caller to record (as open_cases_for)."""
    keys = sorted(keys)
    if not keys:
        return {}
    campaigns = dict(Campaign.objects.filter(key__in=keys).values_list("key", "pk"))
    new = [key for key in keys if key not in campaigns]
    if new:
        # RETURNING says which this transaction created: a grouper racing us for the same new cluster gets
        # nothing back for it, so each campaign has one campaign.created event (the creator's).
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO cases_campaign (key, detector_slug, cluster_id, name, created_at)
                SELECT k, split_part(k, ':', 1), substr(k, strpos(k, ':') + 1),
                       'Cluster ' || substr(k, strpos(k, ':') + 1) || ' (' || split_part(k, ':', 1) || ')', now()
                FROM unnest(%s::text[]) AS t(k)
                ON CONFLICT (key) DO NOTHING
                RETURNING key, id
                """,
                [sqlarray.texts(new)],
            )
            created = dict(cursor.fetchall())
        campaigns.update(created)
        if len(campaigns) < len(keys):  # created by a transaction that committed meanwhile
            campaigns = dict(Campaign.objects.filter(key__in=keys).values_list("key", "pk"))
        entries = [Entry(actor=actor, action=AuditAction.CAMPAIGN_CREATED,
                         target=Target("cases.campaign", str(pk)), data={"key": key})
                   for key, pk in sorted(created.items())]
        if events is None:
            record_many(entries)
        else:
            events.extend(entries)
    return campaigns


# The conflict target is the one-open-case index, whose condition is models.open_case read as SQL (built on first
# use: it needs the database connection), so the two cannot drift apart.
_OPEN_CASES = """
INSERT INTO cases_case (account_id, campaign_id, state, queue, priority, sla_due_at, signals,
                        flag_count, total_requests, max_score, opened_at, updated_at)
SELECT a, c, 'new', '', 0, %(due)s, '{{}}', 0, 0, 0, %(now)s, %(now)s
FROM unnest(%(accounts)s::bigint[], %(campaigns)s::bigint[]) AS t(a, c)
ON CONFLICT (account_id) WHERE {open_case} DO NOTHING
RETURNING account_id, id
"""


@functools.cache
def _open_cases_sql() -> str:
    return _OPEN_CASES.format(open_case=q_sql(open_case(), Case))


def open_cases_for(*, account_ids: set[int], actor, opened_by: dict[int, list[str]],
                   campaign_of: dict[int, str] | None = None, campaigns: dict[str, int] | None = None,
                   events: list[Entry] | None = None) -> tuple[dict[int, int], set[int]]:
    """Return ({account_id: open case id}, ids of the cases opened here), opening a case (audited) for
    each account without one.

    The database allows one open case per account (a partial unique index); two grouping workers that
    race to open the same account's case both end up with the one that won. A case opened for an account
    in ``campaign_of`` ({account_id: cluster key}, ids in ``campaigns``) is opened in that campaign, and its
    ``case.opened`` event names it (no separate ``case.campaign_linked`` event: one event per new case
    says which case was opened, for which account, by which flags, in which campaign). With ``events``
    given, the events are appended to it for the caller to record later in the same transaction (grouping
    records all of a batch's events at once, after its case rows are updated).
    """
    campaign_of, campaigns = campaign_of or {}, campaigns or {}
    # By account only (the state is checked here): "state IN (open states)" in SQL would tempt the planner
    # to read every open case when its statistics say there are few.
    with connection.cursor() as cursor:
        cursor.execute("SELECT account_id, id, state FROM cases_case WHERE account_id = ANY(%s::bigint[])",
                       [sqlarray.ints(sorted(account_ids))])
        existing = {account_id: pk for account_id, pk, state in cursor.fetchall() if state in Case.OPEN_STATES}
    missing = sorted(account_ids - set(existing))
    opened: dict[int, int] = {}
    if missing:
        now = timezone.now()
        with connection.cursor() as cursor:
            # Opened with the longest SLA; cases_add_flags brings it closer as soon as the flags are counted.
            cursor.execute(
                _open_cases_sql(),
                {"accounts": sqlarray.ints(missing), "now": now, "due": now + SLA_DEFAULT,
                 "campaigns": sqlarray.ints(campaigns.get(campaign_of.get(a, "")) for a in missing)},
            )
            opened = dict(cursor.fetchall())
        existing.update(opened)
        raced = set(missing) - set(opened)
        if raced:
            existing.update(Case.objects.filter(account_id__in=raced, state__in=Case.OPEN_STATES)
                            .values_list("account_id", "pk"))
        opened_events = []
        for account_id, case_id in sorted(opened.items()):
            data = {"account_id": account_id, "flags": opened_by.get(account_id, [])[:20]}
            if campaign_of.get(account_id) in campaigns:
                data["campaign"] = campaign_of[account_id]
            opened_events.append(Entry(actor=actor, action=AuditAction.CASE_OPENED,
                                       target=Target("cases.case", str(case_id)), data=data))
        if events is None:
            record_many(opened_events)
        else:
            events.extend(opened_events)
    return existing, set(opened.values())


def campaigns_link(*, case_clusters: dict[int, str], actor, events: list[Entry] | None = None,
                   campaigns: dict[str, int] | None = None) -> None:
    """Link existing cases to the campaign of their detector cluster ("detector-slug:cluster-id").

    A case joins the first campaign its flags name and stays there; a new cluster key creates a campaign
    (``campaigns`` gives ids already known). Each link is audited (``case.campaign_linked``); a case opened
    in its campaign (open_cases_for) needs none. With ``events`` given, the audit events are appended to it
    for the caller to record (as open_cases_for).
    """
    if not case_clusters:
        return
    campaigns = dict(campaigns or {})
    unknown = set(case_clusters.values()) - set(campaigns)
    if unknown:
        campaigns.update(campaigns_ensure(keys=unknown, actor=actor, events=events))
    # By primary key only, the unlinked ones picked here: "campaign IS NULL" in SQL would tempt the planner
    # to read every unlinked case. The UPDATE links only those still unlinked, and says which.
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, campaign_id FROM cases_case WHERE id = ANY(%s::bigint[])",
                       [sqlarray.ints(sorted(case_clusters))])
        unlinked = sorted(pk for pk, campaign in cursor.fetchall() if campaign is None)
        if not unlinked:
            return
        ids = sqlarray.ints(unlinked)
        cursor.execute(
            "UPDATE cases_case c SET campaign_id = l.campaign_id "
            "FROM unnest(%(ids)s::bigint[], %(links)s::bigint[]) AS l(case_id, campaign_id) "
            "WHERE c.id = ANY(%(ids)s::bigint[]) AND c.id = l.case_id AND coalesce(c.campaign_id, 0) = 0",
            {"ids": ids, "links": sqlarray.ints(campaigns[case_clusters[pk]] for pk in unlinked)},
        )
    entries = [Entry(actor=actor, action=AuditAction.CASE_CAMPAIGN_LINKED, target=Target("cases.case", str(pk)),
                     data={"campaign": case_clusters[pk]}) for pk in unlinked]
    if events is None:
        record_many(entries)
    else:
        events.extend(entries)


@dataclass(frozen=True)
class FlagsAdded:
    """What one grouping batch adds to one case (computed by the flags app, which owns the flags)."""

    case_id: int
    flag_count: int
    total_requests: int
    max_score: float
    # The latest observation twice: as PostgreSQL's text (written back exactly, never parsed here) and as
    # seconds since the epoch (for the priority's recency). Parsing thousands of timestamps a batch was a
    # large part of grouping's Python time.
    last_observed_at: str
    last_observed_epoch: float
    signals: list[str]


# bigint's largest value: a case's request total saturates there instead of overflowing.
MAX_TOTAL_REQUESTS = 2**63 - 1

# Lock the batch's cases in case id order (so two batches touching the same cases cannot deadlock) and read
# their aggregates as they are now: later batches for these cases wait for this transaction, earlier ones
# have committed (READ COMMITTED reads the newest committed row once it holds the lock).
_LOCK_CASES = """
SELECT id, signals, flag_count, total_requests, max_score, extract(epoch FROM last_observed_at)::float8
FROM cases_case WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE
"""
# One write per case for the whole batch: aggregates plus the queue, priority and SLA derived from them. The
# SLA only ever gets closer: a rising priority shortens it, a falling one never extends it (LEAST).
_WRITE_CASES = """
UPDATE cases_case c SET flag_count = v.flag_count, total_requests = v.total_requests, max_score = v.max_score,
    last_observed_at = GREATEST(c.last_observed_at, v.last_observed_at),
    signals = string_to_array(v.signals, ',')::varchar[], queue = v.queue, priority = v.priority,
    sla_due_at = LEAST(c.sla_due_at, c.opened_at + v.sla_seconds * interval '1 second'), updated_at = %(now)s
FROM unnest(%(ids)s::bigint[], %(counts)s::integer[], %(totals)s::bigint[], %(scores)s::float8[],
            %(observed)s::timestamptz[], %(signals)s::text[], %(queues)s::text[], %(priorities)s::integer[],
            %(sla)s::integer[])
    AS v(case_id, flag_count, total_requests, max_score, last_observed_at, signals, queue, priority, sla_seconds)
WHERE c.id = ANY(%(ids)s::bigint[]) AND c.id = v.case_id
"""


def cases_add_flags(*, added: list[FlagsAdded], now: datetime | None = None) -> int:
    """Add newly attached flags to their cases' aggregates, and set queue, priority and SLA (priority.py).

    Incremental: each case gains what this batch adds to it (count and request total added, score and last
    observation the larger, signals united), so the cost depends on the batch, never on how many flags a case
    already has. Two statements for the whole batch: lock and read the cases (``_LOCK_CASES``), write each
    once (``_WRITE_CASES``); the lock held from read to commit is what makes concurrent batches for one case
    add up instead of overwriting each other. A request total saturates at bigint's maximum.
    Derived values only; the flags that produced them are audited by the grouping event. Returns how many
    cases changed.
    """
    if not added:
        return 0
    now = now or timezone.now()
    by_case = {a.case_id: a for a in added}
    columns: dict[str, list] = {name: [] for name in (
        "ids", "counts", "totals", "scores", "observed", "signals", "queues", "priorities", "sla")}
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_CASES, [sqlarray.ints(sorted(by_case))])
        for case_id, signals, count, total, score, observed in cursor.fetchall():
            a = by_case[case_id]
            signals = sorted(set(signals) | set(a.signals))
            total = min(total + a.total_requests, MAX_TOTAL_REQUESTS)
            score = max(score, a.max_score)
            latest = datetime.fromtimestamp(a.last_observed_epoch if observed is None
                                            else max(observed, a.last_observed_epoch), UTC)
            priority = case_priority(signals=signals, max_score=score, total_requests=total, last_observed=latest,
                                     now=now)
            for name, value in (("ids", case_id), ("counts", count + a.flag_count), ("totals", total),
                                ("scores", score), ("observed", a.last_observed_at), ("signals", ",".join(signals)),
                                ("queues", queue_for(signals)), ("priorities", priority),
                                ("sla", int(sla_for(priority).total_seconds()))):
                columns[name].append(value)
        cursor.execute(_WRITE_CASES, {
            "now": now, "ids": sqlarray.ints(columns["ids"]), "counts": sqlarray.ints(columns["counts"]),
            "totals": sqlarray.ints(columns["totals"]), "scores": sqlarray.floats(columns["scores"]),
            "observed": sqlarray.texts(columns["observed"]), "signals": sqlarray.texts(columns["signals"]),
            "queues": sqlarray.texts(columns["queues"]), "priorities": sqlarray.ints(columns["priorities"]),
            "sla": sqlarray.ints(columns["sla"])})
    return len(columns["ids"])


@transaction.atomic
def account_profile_set(*, actor, account: Account, contact_email: str | None = None, region: str | None = None,
                        researcher_programme: bool | None = None) -> Account:
    """Set an account's contact email, region or researcher-programme enrolment; ``None`` leaves a field as it is.

    Enrolment changes how a case is read (good-faith research gets flagged too), so every change is audited
    with its before and after; a call that changes nothing writes nothing. The audit trail can never be
    erased, so it records *that* the contact email changed, never the address itself.
    """
    # NO KEY: grouping keeps opening cases that reference this row while we hold it.
    account = Account.objects.select_for_update(no_key=True).get(pk=account.pk)
    wanted = {"contact_email": contact_email, "region": region, "researcher_programme": researcher_programme}
    changed = sorted(name for name, value in wanted.items() if value is not None and getattr(account, name) != value)
    if not changed:
        return account
    before = {name: getattr(account, name) for name in changed}
    for name in changed:
        setattr(account, name, wanted[name])
    account.clean_fields(exclude=[f.name for f in Account._meta.fields if f.name not in changed])
    account.save(update_fields=changed)
    data = {"account": account.external_id, "changed": changed}
    data.update({name: {"from": before[name], "to": wanted[name]} for name in changed if name != "contact_email"})
    record(actor=actor, action=AuditAction.ACCOUNT_PROFILE_UPDATED, target=account, data=data)
    return account


@transaction.atomic
def case_note_add(*, author, case: Case, text: str):
    """An internal note (never shown to the holder)."""
    from django.core.exceptions import PermissionDenied

    from ..models import CaseNote

    if not author.has_perm("cases.add_casenote"):
        raise PermissionDenied("Your role does not write case notes.")
    if not text.strip():
        raise ValueError("a note needs text")
    ensure_within_limits(CaseNote, text=text.strip())
    note = CaseNote.objects.create(case=case, author=author, text=text.strip())
    record(actor=author, action=AuditAction.CASE_NOTE_ADDED, target=case, data={"note": note.pk})
    return note
