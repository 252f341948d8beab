"""The report's five figures: for each, its title, axis titles, a sentence for screen readers, the chart geometry
(``compliance.access.charts``: the console's one SVG helper) and the table beside it. Presentation only."""

from __future__ import annotations

from dataclasses import dataclass

from reviewapp.compliance.access.charts import month_bars, month_lines

from . import tables
from .selectors import TransparencyReport


@dataclass(frozen=True)
class Figure:
    slug: str  # the CSV's name, and the ids in the page
    title: str
    kind: str  # bars | lines
    y_title: str
    description: str
    chart: dict | None
    table: tables.Table
    note: str = ""
    x_title: str = "Month (UTC)"

    @property
    def csv_url_name(self) -> str:
        return f"compliance:transparency-csv-{self.slug}"


def _hours(value: float | None) -> str:
    return "no value" if value is None else f"{value:.1f} h"


def _decisions(report: TransparencyReport) -> Figure:
    data = report.decisions
    months = [m.month for m in data.months]
    series = [s for s in data.series() if any(s[2])] or data.series()[:1]
    per_action = "; ".join(f"{label} {sum(values)}" for _, label, values in data.series() if sum(values))
    per_clause = ", ".join(f"{ref} {n}" for ref, n in data.clause_totals.items())
    return Figure(
        slug="decisions", title="Decisions per month, by action", kind="bars", y_title="Decisions",
        description=(f"Stacked bars, one a month: {data.total} decisions in the period"
                     + (f" ({per_action}); by clause: {per_clause}." if data.total else ".")),
        chart=month_bars(months, series, stacked=True), table=tables.decisions_summary(report),
        note="The CSV has the same numbers by clause too (a decision citing two clauses counts under each).")


def _appeals(report: TransparencyReport) -> Figure:
    rows = report.appeals
    months = [m.month for m in rows]
    series = [("filed", "Filed", [m.filed for m in rows]), ("decided", "Decided", [m.decided for m in rows]),
              ("overturned", "Overturned", [m.overturned for m in rows])]
    filed, decided, overturned = (sum(values) for _, _, values in series)
    rate = f"{overturned / decided * 100:.1f}%" if decided else "no decided appeals"
    return Figure(
        slug="appeals", title="Appeals per month: filed, decided and overturned", kind="bars", y_title="Appeals",
        description=(f"Grouped bars, three a month: {filed} appeals filed, {decided} decided, {overturned} "
                     f"overturned in the period (overturn rate {rate})."),
        chart=month_bars(months, series, stacked=False), table=tables.appeals_table(report))


def _durations(report: TransparencyReport) -> Figure:
    months = [m.month for m in report.decisions.months]
    series = [("decision", "Case opened → decision", [m.median_hours for m in report.decisions.months]),
              ("appeal", "Appeal filed → outcome", [m.median_hours for m in report.appeals])]
    latest = {label: next((v for v in reversed(values) if v is not None), None) for _, label, values in series}
    return Figure(
        slug="durations", title="Median time to decision and to appeal outcome, per month", kind="lines",
        y_title="Median (hours)",
        description=("Two lines, a point a month with a value (a month without one leaves a gap): "
                     + "; ".join(f"{label}, latest {_hours(v)}" for label, v in latest.items()) + "."),
        chart=month_lines(months, series, unit=" h"), table=tables.durations_table(report))


def _forum(report: TransparencyReport) -> Figure:
    rows = report.forum
    months = [m.month for m in rows]
    series = [("approved", "Shares approved", [m.shares_approved for m in rows]),
              ("whole", "Whole shares withdrawn", [m.withdrawn_by_officer for m in rows]),
              ("account", "Accounts withdrawn after appeal", [m.withdrawn_after_appeal for m in rows])]
    totals = "; ".join(f"{label} {sum(values)}" for _, label, values in series)
    return Figure(
        slug="forum", title="Forum shares and withdrawals per month", kind="bars", y_title="Shares / withdrawals",
        description=f"Grouped bars, three a month. In the period: {totals}.",
        chart=month_bars(months, series, stacked=False), table=tables.forum_table(report))


def _researchers(report: TransparencyReport) -> Figure:
    data = report.researchers
    months = [m.month for m in data.months]
    series = data.series()
    ended = "; ".join(f"{label} {sum(values)}" for _, label, values in series if sum(values))
    return Figure(
        slug="researchers", title="Researcher-programme accounts flagged, and how their cases ended", kind="bars",
        y_title="Cases opened",
        description=(f"Stacked bars, one for each month cases were opened in: {data.accounts} researcher-programme "
                     f"account{'s' if data.accounts != 1 else ''} flagged in {data.cases} "
                     f"case{'s' if data.cases != 1 else ''}" + (f" ({ended})." if ended else ".")),
        chart=month_bars(months, series, stacked=True), table=tables.researchers_table(report),
        note="Enrolment is as it is now: the account record keeps no history of it.")


def figures(report: TransparencyReport) -> list[Figure]:
    return [_decisions(report), _appeals(report), _durations(report), _forum(report), _researchers(report)]
