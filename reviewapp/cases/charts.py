"""Geometry of the small server-rendered SVG charts on the reviewer pages (no JavaScript needed).

Presentation only: the numbers come from selectors, and every chart's page also shows them in a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


def compact(number: float) -> str:
    """1234 → "1.2k", 3_400_000 → "3.4M": axis labels that fit."""
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(number) >= size:
            return f"{number / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{number:g}"


@dataclass(frozen=True)
class QueueBar:
    label: str
    y: float
    bars: list[dict]  # {"kind", "value", "width", "y"}


def queue_bars(rows: list[dict], *, width: int = 560, row_height: int = 54, label_width: int = 210) -> dict:
    """Horizontal bars per queue: open, unclaimed and overdue cases, on one scale."""
    top = max([max(r["open"], r["unclaimed"], r["overdue"]) for r in rows] + [1])
    span = width - label_width - 60
    queues = []
    for i, row in enumerate(rows):
        y = i * row_height + 6
        bars = [{"kind": kind, "value": row[kind], "y": y + j * 14, "width": round(span * row[kind] / top, 1)}
                for j, kind in enumerate(("open", "unclaimed", "overdue"))]
        queues.append(QueueBar(label=row["queue"].label, y=y + 22, bars=bars))
    return {"width": width, "height": len(rows) * row_height + 4, "label_width": label_width, "queues": queues}


def timeline(points: list[dict], *, width: int = 720, height: int = 220) -> dict | None:
    """Bars of requests per day (left scale) and a line of the day's highest score (right scale, 0–1),
    on a continuous axis of days: a quiet day is a gap, not squeezed out."""
    if not points:
        return None
    left, right, top, bottom = 56, 44, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    first, last = points[0]["day"], points[-1]["day"]
    days = (last - first).days + 1
    most = max(p["requests"] for p in points) or 1
    slot = plot_w / days
    bar_w = max(1.5, min(36.0, slot * 0.75))
    bars, line = [], []
    for p in points:
        centre = left + slot * ((p["day"] - first).days + 0.5)
        h = plot_h * p["requests"] / most
        bars.append({"x": round(centre - bar_w / 2, 1), "y": round(top + plot_h - h, 1), "w": round(bar_w, 1),
                     "h": round(h, 1), "day": p["day"], "requests": p["requests"]})
        line.append({"x": round(centre, 1), "y": round(top + plot_h * (1 - p["max_score"]), 1),
                     "score": p["max_score"], "day": p["day"]})
    ticks = [{"y": round(top + plot_h * (1 - f), 1), "volume": compact(most * f), "score": f"{f:.1f}"}
             for f in (0, 0.5, 1)]
    step = max(1, -(-days // 6))
    labels = [{"x": round(left + slot * (i + 0.5), 1), "day": first + timedelta(days=i)} for i in range(0, days, step)]
    return {"width": width, "height": height, "left": left, "right_x": width - right, "top": top,
            "bars": bars, "line": line, "ticks": ticks, "labels": labels, "days": days,
            "polyline": " ".join(f"{p['x']},{p['y']}" for p in line), "label_y": height - 12}
