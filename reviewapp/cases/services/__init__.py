"""Writes for accounts, campaigns and cases. Each writes its audit events in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import Entry, Target, record, record_many

from ..models import Account, Campaign, Case
from ..priority import SLA_DEFAULT, case_priority, sla_for
from ..vocabulary import queue_for
from ..workflow import TRANSITIONS, InvalidCaseTransition


@transaction.atomic
def case_transition(*, case: Case, to: str, actor, reason: str = "") -> Case:
    """Move a case along the workflow table (workflow.TRANSITIONS); anything else raises InvalidCaseTransition."""
    case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    to = Case.State(to)
    if to not in TRANSITIONS[case.state]:
        raise InvalidCaseTransition(case, to)
    before = case.state
    case.state = to
    case.closed_at = timezone.now() if to == Case.State.CLOSED else case.closed_at
    case.save(update_fields=["state", "closed_at", "updated_at"])
    record(actor=actor, action=AuditAction.CASE_TRANSITIONED, target=case,
           data={"from": before, "to": to.value, "reason": reason})
    return case


def accounts_ensure(*, accounts: dict[str, str]) -> dict[str, int]:
    """Make sure each flagged account exists ({external_id: organization_id}); return {external_id: pk}.

    An account row records only that the platform account was flagged; its first flag's grouping
    event (``case.opened``) is its audit record.
    """
    ids, orgs = list(accounts), [accounts[i] for i in accounts]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO cases_account (external_id, organization_id, contact_email, region,
                                       researcher_programme, enforcement_status, first_flagged_at)
            SELECT i, o, '', '', false, 'none', now() FROM unnest(%s::text[], %s::text[]) AS t(i, o)
            ON CONFLICT (external_id) DO NOTHING
            """,
            [ids, orgs],
        )
    return dict(Account.objects.filter(external_id__in=ids).values_list("external_id", "pk"))


def open_cases_for(*, account_ids: set[int], actor, opened_by: dict[int, list[str]]) -> dict[int, int]:
    """Return {account_id: open case id}, opening a case (audited) for each account without one.

    The database allows one open case per account (a partial unique index); two grouping workers that
    race to open the same account's case both end up with the one that won.
    """
    existing = dict(
        Case.objects.filter(account_id__in=account_ids, state__in=Case.OPEN_STATES).values_list("account_id", "pk")
    )
    missing = sorted(account_ids - set(existing))
    if missing:
        now = timezone.now()
        with connection.cursor() as cursor:
            # Opened with the longest SLA; cases_refresh brings it closer as soon as the flags are counted.
            cursor.execute(
                """
                INSERT INTO cases_case (account_id, state, queue, priority, sla_due_at, signals, flag_count,
                                        total_requests, max_score, opened_at, updated_at)
                SELECT a, 'new', '', 0, %(due)s, '{}', 0, 0, 0, %(now)s, %(now)s FROM unnest(%(accounts)s::bigint[]) a
                ON CONFLICT (account_id) WHERE state IN ('new', 'in_review', 'awaiting_approval') DO NOTHING
                RETURNING account_id, id
                """,
                {"accounts": missing, "now": now, "due": now + SLA_DEFAULT},
            )
            opened = dict(cursor.fetchall())
        existing.update(opened)
        raced = set(missing) - set(opened)
        if raced:
            existing.update(Case.objects.filter(account_id__in=raced, state__in=Case.OPEN_STATES)
                            .values_list("account_id", "pk"))
        record_many([
            Entry(actor=actor, action=AuditAction.CASE_OPENED, target=Target("cases.case", str(case_id)),
                  data={"account_id": account_id, "flags": opened_by.get(account_id, [])[:20]})
            for account_id, case_id in sorted(opened.items())
        ])
    return existing


def campaigns_link(*, case_clusters: dict[int, str], actor) -> None:
    """Link cases to the campaign of their detector cluster ("detector-slug:cluster-id").

    A case joins the first campaign its flags name and stays there; a new cluster key creates a campaign.
    """
    keys = sorted(set(case_clusters.values()))
    campaigns = {c.key: c for c in Campaign.objects.filter(key__in=keys)}
    new = [Campaign(key=key, detector_slug=key.split(":", 1)[0], cluster_id=key.split(":", 1)[1],
                    name=f"Cluster {key.split(':', 1)[1]} ({key.split(':', 1)[0]})")
           for key in keys if key not in campaigns]
    if new:
        Campaign.objects.bulk_create(new, ignore_conflicts=True)
        campaigns = {c.key: c for c in Campaign.objects.filter(key__in=keys)}
    entries = [Entry(actor=actor, action=AuditAction.CAMPAIGN_CREATED, target=campaigns[c.key], data={"key": c.key})
               for c in new if c.key in campaigns]
    unlinked = sorted(Case.objects.filter(pk__in=case_clusters, campaign__isnull=True).values_list("pk", flat=True))
    by_campaign: dict[str, list[int]] = defaultdict(list)
    for case_id in unlinked:
        by_campaign[case_clusters[case_id]].append(case_id)
        entries.append(Entry(actor=actor, action=AuditAction.CASE_CAMPAIGN_LINKED,
                             target=Target("cases.case", str(case_id)), data={"campaign": case_clusters[case_id]}))
    for key, case_ids in by_campaign.items():  # one UPDATE per campaign, not per case
        Case.objects.filter(pk__in=case_ids, campaign__isnull=True).update(campaign=campaigns[key])
    record_many(entries)


@dataclass(frozen=True)
class CaseAggregate:
    """What a case's flags add up to (computed by the flags app, which owns the flags)."""

    case_id: int
    signals: list[str]
    flag_count: int
    total_requests: int
    max_score: float
    last_observed_at: datetime


def cases_refresh(*, aggregates: list[CaseAggregate], now: datetime | None = None) -> None:
    """Set each case's signals, counts, queue, priority and SLA from its flags' aggregate (priority.py).

    Derived values only; the flags that produced them are audited by the grouping event.
    """
    now = now or timezone.now()
    cases = Case.objects.in_bulk([a.case_id for a in aggregates])
    for aggregate in aggregates:
        case = cases[aggregate.case_id]
        case.signals = sorted(aggregate.signals)
        case.flag_count, case.total_requests = aggregate.flag_count, aggregate.total_requests
        case.max_score, case.last_observed_at = aggregate.max_score, aggregate.last_observed_at
        case.queue = queue_for(case.signals)
        case.priority = case_priority(signals=case.signals, max_score=case.max_score,
                                      total_requests=case.total_requests, last_observed=case.last_observed_at,
                                      now=now)
        # The SLA only ever gets closer: a rising priority shortens it, a falling one never extends it.
        case.sla_due_at = min(case.sla_due_at, case.opened_at + sla_for(case.priority))
        case.updated_at = now
    Case.objects.bulk_update(
        cases.values(),
        ["signals", "flag_count", "total_requests", "max_score", "last_observed_at", "queue", "priority",
         "sla_due_at", "updated_at"],
        batch_size=500,
    )


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
    note = CaseNote.objects.create(case=case, author=author, text=text.strip())
    record(actor=author, action=AuditAction.CASE_NOTE_ADDED, target=case, data={"note": note.pk})
    return note
