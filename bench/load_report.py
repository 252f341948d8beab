"""The results section of docs/performance.md, from one `make load` run: locust's ``--csv`` stats and the facts
bench/load.py gathered (the machine, the stack, what the load left in the database).

The section sits between two markers; everything outside them is prose written by hand and kept as is.
``python -m bench.load_report CSV_PREFIX FACTS.json [DOC]`` rewrites the section from a kept run
(``make load LOAD_ARGS=--keep``).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

BEGIN = "<!-- load-results:begin (written by bench/load_report.py from the last `make load`; do not edit) -->"
END = "<!-- load-results:end -->"


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def _ms(value: str) -> str:
    try:
        return f"{float(value):,.0f}"
    except ValueError:
        return value or "-"


def _rate(value: str) -> str:
    try:
        return f"{float(value):,.2f}"
    except ValueError:
        return value or "-"


def section(csv_prefix: Path, facts: dict) -> str:
    stats = _rows(Path(f"{csv_prefix}_stats.csv"))
    failures = _rows(Path(f"{csv_prefix}_failures.csv"))
    rows = [row for row in stats if row["Name"] != "Aggregated"]
    total = next((row for row in stats if row["Name"] == "Aggregated"), None)
    staff = ", ".join(f"{count} {role.replace('_', ' ')}s" for role, count in facts.get("staff", {}).items())
    lines = [
        BEGIN,
        f"## Last run: {facts['date']}",
        "",
        f"- Machine: {facts['machine']}"
        + (f" (load average {facts['load_average']} at the end)" if facts.get("load_average") else "")
        + f"; PostgreSQL {facts['postgresql']}; broker {facts['broker']}; locust on the "
        "same machine, over loopback.",
        f"- Stack (as `make run` starts it, DEBUG off): {facts['web']}; {facts['worker']}; the enforcement receiver, "
        f"the SMTP sink and the local Forum hub (medallion); beat pulls the hub every {facts['pull_interval']} s.",
        f"- Load: {facts['users']} users (spawned {facts['spawn_rate']:g}/s) for {facts['run_time']} "
        f"({facts['seconds']} s with start-up and stop); detectors post {facts['batch']} flags a request.",
        f"- Seed: {facts['seed_flags']:,} flags over {facts['seed_accounts']:,} accounts grouped into cases before "
        f"the run; {staff}; {facts['holders']} holders with an enforced decision and a sign-in link.",
        "",
        "| endpoint | requests | failures | p50 ms | p95 ms | p99 ms | max ms | req/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: r["Name"]):
        name = row["Name"] if row["Name"].startswith(f"{row['Type']} ") else f"{row['Type']} {row['Name']}"
        lines.append(f"| {name} | {row['Request Count']} | {row['Failure Count']} | {_ms(row['50%'])} | "
                     f"{_ms(row['95%'])} | {_ms(row['99%'])} | {_ms(row['Max Response Time'])} | "
                     f"{_rate(row['Requests/s'])} |")
    if total:
        lines.append(f"| **all requests** | **{total['Request Count']}** | **{total['Failure Count']}** | "
                     f"{_ms(total['50%'])} | {_ms(total['95%'])} | {_ms(total['99%'])} | "
                     f"{_ms(total['Max Response Time'])} | **{_rate(total['Requests/s'])}** |")
    lines.append("")
    if failures:
        lines += ["Failures (locust's failures CSV):", ""]
        lines += [f"- {row['Method']} {row['Name']}: {row['Occurrences']} × {row['Error'][:300]}" for row in failures]
    else:
        lines.append("No request failed.")
    problems = facts.get("web_log")
    if problems is not None:
        lines += ["", "gunicorn's log during the run (worker deaths, time-outs, restarts, 5xx): "
                  + ("none." if not problems else "")]
        lines += [f"- `{line}`" for line in problems[:20]]
    problems = facts.get("stack_log")
    if problems is not None:
        lines += ["", "The worker's, beat's and the Forum hub's logs (failed tasks, pulls with errors, hub 500s): "
                  + (f"{len(problems)} lines, the first:" if problems else "none.")]
        lines += [f"- `{line.replace('`', chr(39))}`" for line in problems[:10]]
    notes = facts.get("notes") or []
    lines += ["", "Beside the requests (bench/locustfile.py's NOTES; each request is also in its endpoint's row): "
              + ("; ".join(f"{n['kind']}: {n['name']} × {n['count']}" for n in notes) if notes else "nothing") + "."]
    served = facts.get("served_by_web") or {}
    if len(served) > 1:
        lines += ["", "Requests each web instance answered (its access log): "
                  + "; ".join(f"{name} {count:,}" for name, count in served.items()) + "."]
    done = facts.get("tasks_by_worker") or {}
    if len(done) > 1:
        lines += ["", "Tasks each worker node finished (its log): " + "; ".join(
            f"{name} {sum(tasks.values()):,} ({', '.join(f'{task} {n:,}' for task, n in list(tasks.items())[:4])})"
            for name, tasks in done.items()) + "."]
    checked = facts.get("invariants") or {}
    if checked:
        lines += ["", "Invariants after the run (bench/load.py's `invariants`: counts that must be 0): "
                  + "; ".join(f"{name} {value if not isinstance(value, list) else ' '.join(value)}"
                              for name, value in checked.items()) + "."]
    counts = facts.get("counts") or {}
    if counts:
        lines += ["", "What the load left in the database (seed included): "
                  + "; ".join(f"{name} {value:,}" for name, value in counts.items()) + "."]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write(doc: Path, text: str) -> None:
    """Replace the section between the markers (or append it) and keep the rest of the document."""
    doc.parent.mkdir(parents=True, exist_ok=True)
    old = doc.read_text() if doc.exists() else "# Performance\n\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    doc.write_text(new)


if __name__ == "__main__":
    prefix, facts_path = Path(sys.argv[1]), Path(sys.argv[2])
    default = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
    target = Path(sys.argv[3]) if len(sys.argv) > 3 else default
    write(target, section(prefix, json.loads(facts_path.read_text())))
