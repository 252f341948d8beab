"""What each export holds, and the read that streams it.

Five datasets (``DATASETS``): decisions, statements of reasons, appeals, Forum shares and the audit trail, each
over a date range of one timestamp (a decision's ``decided_at``, a statement's ``issued_at``, an appeal's
``filed_at``, a share's ``proposed_at``, an event's ``created_at``), ordered by that timestamp then id.

Constant memory whatever the range: PostgreSQL does the formatting (timestamps as ISO 8601 UTC text, a JSONL
line as ``json_build_object(…)::text``, CSV cells made safe against formula injection), and the rows come
through a server-side cursor (``QuerySet.iterator(chunk_size=…)``: psycopg 3's named cursor, ``FETCH`` by
``CHUNK_ROWS``) opened inside a transaction, so it is not declared ``WITH HOLD`` (which would make PostgreSQL
materialise the whole result at the commit before the first row is sent). Python only joins text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.contrib.postgres.expressions import ArraySubquery
from django.db import models, transaction
from django.db.models import F, Func, OuterRef, Subquery, Value
from django.db.models.functions import Cast

from appeals.models import Appeal
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Decision, StatementOfReasons
from reviewapp.forum.models import ShareProposal, ShareVersion, ShareWithdrawal

# Rows per FETCH from the server-side cursor, and per chunk of the response.
CHUNK_ROWS = 2000

# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection"): CSV cells that do
# are prefixed with an apostrophe. JSONL values are left exactly as stored.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class IsoUtc(Func):
    """A timestamp as ISO 8601 UTC text with microseconds, ``2026-01-05T10:00:00.000000Z`` (NULL stays NULL)."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    output_field = models.TextField()


class CsvSafe(Func):
    """Text with an apostrophe before a leading =, +, -, @, tab or carriage return (FORMULA_STARTS)."""

    template = ("CASE WHEN left(%(expressions)s, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') "
                "THEN '''' || %(expressions)s ELSE %(expressions)s END")
    output_field = models.TextField()


class ArrayToString(Func):
    function = "array_to_string"
    output_field = models.TextField()


class JsonBuildObject(Func):
    """``json_build_object``: keys in the order given (``JSONObject`` builds jsonb, which sorts its keys)."""

    function = "json_build_object"
    output_field = models.JSONField()


class JsonText(Func):
    template = "(%(expressions)s)::text"
    output_field = models.TextField()


KIND_HELP = {  # Column.kind, as the export page and the API's schema explain it
    "int": "integer",
    "text": "text",
    "time": "ISO 8601 UTC timestamp with microseconds (2026-01-05T10:00:00.000000Z)",
    "bool": "true or false",
    "json": "JSON (in CSV, its text)",
    "list": "list of text (in CSV, space-separated; in JSONL, an array)",
}


@dataclass(frozen=True)
class Column:
    """One column of an export. ``kind`` says how it is written:

    int, text       as stored (text made CSV-safe in CSV)
    time            ISO 8601 UTC text, in both formats
    bool            true/false (a JSON boolean in JSONL)
    json            the stored JSON: its text in CSV, embedded as JSON in JSONL
    list            a list of text: space-separated in CSV, a JSON array in JSONL
    """

    name: str
    expression: object
    kind: str = "text"
    help: str = ""

    @property
    def kind_help(self) -> str:
        return KIND_HELP[self.kind]

    def csv_expression(self):
        expression = self.expression if not isinstance(self.expression, str) else F(self.expression)
        if self.kind == "time":
            return IsoUtc(expression)
        if self.kind == "text":
            return CsvSafe(Cast(expression, models.TextField()))
        if self.kind in ("bool", "json"):
            return Cast(expression, models.TextField())
        if self.kind == "list":
            return ArrayToString(expression, Value(" "))
        return expression

    def json_expression(self):
        expression = self.expression if not isinstance(self.expression, str) else F(self.expression)
        if self.kind == "time":
            return IsoUtc(expression)
        return expression


@dataclass(frozen=True)
class Dataset:
    slug: str
    title: str
    description: str
    model: type[models.Model]
    time_field: str  # the timestamp the date range bounds
    time_label: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def in_range(self, start: datetime, end: datetime) -> models.QuerySet:
        """Rows with ``start <= time < end``, in the export's order."""
        return (self.model._default_manager.filter(**{f"{self.time_field}__gte": start,
                                                      f"{self.time_field}__lt": end})
                .order_by(self.time_field, "pk"))


def _clause_refs(decision: str) -> ArraySubquery:
    """The refs of the clauses a decision cites, in the policy's order (``decision`` names its id)."""
    through = Decision.clauses.through
    return ArraySubquery(through.objects.filter(decision_id=OuterRef(decision))
                         .order_by("clause__position", "clause__ref").values("clause__ref"))


def _share_collection() -> Subquery:
    return Subquery(ShareVersion.objects.filter(proposal_id=OuterRef("pk"), number=OuterRef("current_version"))
                    .values("collection_id")[:1])


def _withdrawn_accounts() -> ArraySubquery:
    return ArraySubquery(ShareWithdrawal.objects.filter(proposal_id=OuterRef("pk"), account__isnull=False)
                         .order_by("withdrawn_at", "pk").values("account__external_id"))


DECISIONS = Dataset(
    slug="decisions", title="Decisions", model=Decision, time_field="decided_at", time_label="decided",
    description="Every decision a reviewer took: the clauses cited (refs of the policy version it was taken "
                "under), the action, who decided and who approved or sent it back, when it took effect and ended, "
                "the internal rationale and the facts the holder was told.",
    columns=(
        Column("id", "pk", "int"),
        Column("case_id", "case_id", "int"),
        Column("account", "account__external_id", help="The platform's account id"),
        Column("decided_at", "decided_at", "time"),
        Column("decided_by", "decided_by__username", help="Username"),
        Column("policy", "policy_version__policy__slug"),
        Column("policy_version", "policy_version__number", "int"),
        Column("clauses", _clause_refs("pk"), "list", help="Clause refs, in the policy's order"),
        Column("action", "action"),
        Column("duration_days", "duration_days", "int"),
        Column("state", "state"),
        Column("approved_by", "approved_by__username", help="The second approver, or who sent it back"),
        Column("approved_at", "approved_at", "time"),
        Column("sent_back_reason", "sent_back_reason"),
        Column("effective_at", "effective_at", "time"),
        Column("ends_at", "ends_at", "time"),
        Column("lifted_at", "lifted_at", "time"),
        Column("campaign_run", "campaign_run"),
        Column("rationale", "rationale"),
        Column("facts_for_holder", "facts_for_holder"),
    ),
)

STATEMENTS = Dataset(
    slug="statements", title="Statements of reasons", model=StatementOfReasons, time_field="issued_at",
    time_label="issued",
    description="Every statement of reasons as issued to the account holder (DSA Art. 17), its content exactly "
                "as frozen at issue, with the decision it explains.",
    columns=(
        Column("id", "pk", "int"),
        Column("decision_id", "decision_id", "int"),
        Column("account", "decision__account__external_id"),
        Column("issued_at", "issued_at", "time"),
        Column("appeal_deadline", "appeal_deadline", "time"),
        Column("action", "decision__action"),
        Column("clauses", _clause_refs("decision_id"), "list"),
        Column("content", "content", "json", help="The statement as issued (JSON)"),
    ),
)

APPEALS = Dataset(
    slug="appeals", title="Appeals", model=Appeal, time_field="filed_at", time_label="filed",
    description="Every appeal a holder filed: the decision appealed, the grounds, the reviewer, the outcome with "
                "its reasons, and the decision that replaced the original where one did.",
    columns=(
        Column("id", "pk", "int"),
        Column("decision_id", "decision_id", "int"),
        Column("account", "account__external_id"),
        Column("filed_at", "filed_at", "time"),
        Column("deadline", "deadline", "time"),
        Column("state", "state"),
        Column("researcher_claim", "researcher_claim", "bool"),
        Column("affiliation", "affiliation"),
        Column("reviewer", "reviewer__username"),
        Column("claimed_at", "claimed_at", "time"),
        Column("outcome", "outcome"),
        Column("decided_at", "decided_at", "time"),
        Column("replacement_decision_id", "replacement_id", "int"),
        Column("outcome_reason", "outcome_reason"),
        Column("grounds", "grounds"),
    ),
)

SHARES = Dataset(
    slug="shares", title="Forum shares", model=ShareProposal, time_field="proposed_at", time_label="proposed",
    description="Every proposal to share with the Forum: what it was about, who proposed, approved or rejected "
                "it, the approved bundle's SHA-256, and what was withdrawn, by whom and why.",
    columns=(
        Column("id", "pk", "int"),
        Column("uuid", "uuid"),
        Column("source", "source"),
        Column("case_id", "case_id", "int"),
        Column("account", "account__external_id"),
        Column("campaign_id", "campaign_id", "int"),
        Column("collection_id", _share_collection(), help="The trust group of the current version"),
        Column("proposed_by", "proposed_by__username"),
        Column("proposed_at", "proposed_at", "time"),
        Column("state", "state"),
        Column("current_version", "current_version", "int"),
        Column("decided_by", "decided_by__username"),
        Column("decided_at", "decided_at", "time"),
        Column("rejection_reason", "rejection_reason"),
        Column("approved_by", "approval__approved_by__username"),
        Column("approved_at", "approval__approved_at", "time"),
        Column("approved_bundle_sha256", "approval__bundle_sha256"),
        Column("withdrawn_at", "withdrawn_at", "time"),
        Column("withdrawn_by", "withdrawn_by__username"),
        Column("withdrawal_reason", "withdrawal_reason"),
        Column("accounts_withdrawn", _withdrawn_accounts(), "list",
               help="Accounts withdrawn after their decision was overturned"),
    ),
)

AUDIT = Dataset(
    slug="audit", title="Audit trail", model=AuditEvent, time_field="created_at", time_label="recorded",
    description="Every event of the audit trail with its place in the hash chain (seq, prev_hash, hash; empty "
                "for the few not sequenced yet), so the chain can be checked outside reviewapp.",
    columns=(
        Column("id", "pk", "int"),
        Column("seq", "seq", "int"),
        Column("created_at", "created_at", "time"),
        Column("actor_type", "actor_type"),
        Column("actor_id", "actor_id"),
        Column("actor", "actor_display", help="Username (and full name) as recorded"),
        Column("action", "action"),
        Column("target_type", "target_type"),
        Column("target_id", "target_id"),
        Column("data", "data", "json"),
        Column("prev_hash", "prev_hash"),
        Column("hash", "hash"),
    ),
)

DATASETS: dict[str, Dataset] = {dataset.slug: dataset for dataset in (DECISIONS, STATEMENTS, APPEALS, SHARES, AUDIT)}
FORMATS = ("csv", "jsonl")


def export_count(dataset: Dataset, start: datetime, end: datetime) -> int:
    return dataset.in_range(start, end).order_by().count()


def csv_queryset(dataset: Dataset, start: datetime, end: datetime) -> models.QuerySet:
    """The CSV cells of each row (text, ints or None), formatted by PostgreSQL. (The bench COPYs this very query.)"""
    names = [f"_x{index}" for index in range(len(dataset.columns))]
    return dataset.in_range(start, end).annotate(
        **{name: column.csv_expression() for name, column in zip(names, dataset.columns, strict=True)}
    ).values_list(*names)


def jsonl_queryset(dataset: Dataset, start: datetime, end: datetime) -> models.QuerySet:
    """Each row as one JSON object's text, keys in column order."""
    pairs = [part for column in dataset.columns for part in (Value(column.name), column.json_expression())]
    return dataset.in_range(start, end).annotate(_line=JsonText(JsonBuildObject(*pairs))).values_list(
        "_line", flat=True)


def csv_rows(dataset: Dataset, start: datetime, end: datetime) -> Iterator[tuple]:
    """The rows as CSV cells, streamed; see the module docstring for the cursor."""
    return _streamed(csv_queryset(dataset, start, end))


def jsonl_lines(dataset: Dataset, start: datetime, end: datetime) -> Iterator[str]:
    """The rows as JSON objects, one text each, streamed."""
    return _streamed(jsonl_queryset(dataset, start, end))


def _streamed(queryset: models.QuerySet) -> Iterator:
    # In a transaction the cursor is a plain (WITHOUT HOLD) one: rows leave PostgreSQL as they are read.
    with transaction.atomic():
        yield from queryset.iterator(chunk_size=CHUNK_ROWS)
