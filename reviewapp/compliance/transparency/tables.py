"""The numbers behind each chart as one table: the page shows it beside the chart and the chart's CSV is the same
rows, so the download, the table and the drawing cannot disagree. Presentation only (the numbers come from
selectors): a column has a key (the CSV header), a label (the page's) and a kind that says how a value reads."""

from __future__ import annotations

from dataclasses import dataclass

from .selectors import ACTIONS, RESEARCHER_OUTCOMES, TransparencyReport

ALL_CLAUSES = "all clauses"
NUMERIC = frozenset({"count", "hours", "rate"})


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "count"  # month | count | hours | rate | text


@dataclass(frozen=True)
class Table:
    columns: list[Column]
    rows: list[list]

    def csv_rows(self) -> list[list[str]]:
        return [[c.key for c in self.columns],
                *[[_format(c.kind, value, csv=True) for c, value in zip(self.columns, row, strict=True)]
                  for row in self.rows]]

    def display_rows(self) -> list[list[dict]]:
        return [[{"text": _format(c.kind, value, csv=False), "num": c.kind in NUMERIC, "head": i == 0}
                 for i, (c, value) in enumerate(zip(self.columns, row, strict=True))] for row in self.rows]


# How a value of each kind reads: (in the CSV, on the page); a count or a text is itself. A missing value (a median
# of no rows, a rate of nothing decided) is empty in the CSV and a dash on the page, never a zero.
_FORMATS = {"month": ("{:%Y-%m}", "{:%b %Y}"), "hours": ("{:.2f}", "{:.1f} h"), "rate": ("{:.4f}", "{:.1%}")}


def _format(kind: str, value, *, csv: bool) -> str:
    if value is None:
        return "" if csv else "—"
    pattern = _FORMATS.get(kind)
    return pattern[0 if csv else 1].format(value) if pattern else str(value)


def decisions_table(report: TransparencyReport) -> Table:
    """Month × action for every clause together (what the chart stacks), then month × clause × action."""
    data = report.decisions
    columns = [Column("month", "Month", "month"), Column("clause", "Clause", "text"),
               Column("clause_title", "Clause title", "text"), Column("action", "Action", "text"),
               Column("decisions", "Decisions")]
    rows = [[m.month, ALL_CLAUSES, "", label, m.by_action[value]] for m in data.months for value, label in ACTIONS]
    rows += [[r.month, r.clause, r.titles, r.action_label, r.decisions] for r in data.by_clause]
    return Table(columns, rows)


def decisions_summary(report: TransparencyReport) -> Table:
    """The page's compact table beside the chart: a row a month, a column an action."""
    columns = [Column("month", "Month", "month"), *[Column(value, label) for value, label in ACTIONS],
               Column("total", "Total")]
    rows = [[m.month, *[m.by_action[value] for value, _ in ACTIONS], m.total] for m in report.decisions.months]
    return Table(columns, rows)


def appeals_table(report: TransparencyReport) -> Table:
    columns = [Column("month", "Month", "month"), Column("filed", "Filed"), Column("decided", "Decided"),
               Column("upheld", "Upheld"), Column("overturned", "Overturned"), Column("modified", "Modified"),
               Column("overturn_rate", "Overturn rate", "rate")]
    rows = [[m.month, m.filed, m.decided, m.upheld, m.overturned, m.modified, m.overturn_rate]
            for m in report.appeals]
    return Table(columns, rows)


def durations_table(report: TransparencyReport) -> Table:
    columns = [Column("month", "Month", "month"), Column("decisions", "Decisions"),
               Column("median_hours_to_decision", "Median time to decision", "hours"),
               Column("appeals_decided", "Appeals decided"),
               Column("median_hours_to_appeal_outcome", "Median time to appeal outcome", "hours")]
    rows = [[d.month, d.total, d.median_hours, a.decided, a.median_hours]
            for d, a in zip(report.decisions.months, report.appeals, strict=True)]
    return Table(columns, rows)


def forum_table(report: TransparencyReport) -> Table:
    columns = [Column("month", "Month", "month"), Column("shares_approved", "Shares approved"),
               Column("withdrawn_whole_share", "Whole shares withdrawn"),
               Column("withdrawn_account_after_appeal", "Accounts withdrawn after appeal")]
    rows = [[m.month, m.shares_approved, m.withdrawn_by_officer, m.withdrawn_after_appeal] for m in report.forum]
    return Table(columns, rows)


def researchers_table(report: TransparencyReport) -> Table:
    columns = [Column("month", "Month", "month"), Column("accounts", "Accounts flagged"), Column("cases", "Cases"),
               *[Column(key, label) for key, label in RESEARCHER_OUTCOMES]]
    rows = [[m.month, m.accounts, m.cases, *[m.by_outcome[key] for key, _ in RESEARCHER_OUTCOMES]]
            for m in report.researchers.months]
    return Table(columns, rows)


CSV_TABLES = {"decisions": decisions_table, "appeals": appeals_table, "durations": durations_table,
              "forum": forum_table, "researchers": researchers_table}
