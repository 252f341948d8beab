"""Geometry of the console's charts, drawn on the server as SVG (no JavaScript needed): the per-person weekly
openings chart, and the bars and lines by month of the transparency report (below).

Weekly openings: small multiples, one strip per person, one bar per week on one shared scale, the part of each bar
that was outside the person's own assigned cases drawn darker; the page shows the same numbers in a table.
"""

from __future__ import annotations

import math

from reviewapp.cases.charts import compact

from .selectors import WeeklyCounts


def weekly_strips(data: WeeklyCounts, *, width: int = 720, strip: int = 34, label_width: int = 170,
                  total_width: int = 64) -> dict | None:
    if not data.people:
        return None
    top_axis = 18
    plot_w = width - label_width - total_width
    slot = plot_w / len(data.weeks)
    bar_w = max(2.0, min(28.0, slot * 0.7))
    most = max(max(p.counts) for p in data.people) or 1
    rows = []
    for i, person in enumerate(data.people):
        base = top_axis + (i + 1) * strip - 6
        bars = []
        for j, (count, outside) in enumerate(zip(person.counts, person.outside, strict=True)):
            h = (strip - 10) * count / most
            oh = (strip - 10) * outside / most
            bars.append({"x": round(label_width + slot * j + (slot - bar_w) / 2, 1), "w": round(bar_w, 1),
                         "y": round(base - h, 1), "h": round(h, 1), "oy": round(base - oh, 1), "oh": round(oh, 1),
                         "count": count, "outside": outside, "week": data.weeks[j]})
        rows.append({"name": person.name, "label_y": base - 4, "base": base, "bars": bars,
                     "total": person.total, "outside_total": person.outside_total})
    step = max(1, -(-len(data.weeks) // 8))
    labels = [{"x": round(label_width + slot * (j + 0.5), 1), "week": week}
              for j, week in enumerate(data.weeks) if j % step == 0]
    return {"width": width, "height": top_axis + len(data.people) * strip + 4, "label_width": label_width,
            "total_x": width - total_width + 8, "rows": rows, "labels": labels, "most": compact(most),
            "axis_y": 12}


# ── charts by month (the transparency report): stacked or grouped bars, and lines ───────────────────────────
# Each series is (key, label, one value per month); the template gives series i the class "series-i" (app.css)
# and the page shows the same numbers in a table.


def _scale(most: float, *, whole: bool) -> tuple[float, list[float]]:
    """A scale that reads well: about four steps of 1, 2 or 5 × 10ⁿ (whole numbers only for counts), from 0 to the
    first step at or above ``most``. Returns the top and the tick values."""
    raw = max(most, 1) / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(s * magnitude for s in (1, 2, 5, 10) if s * magnitude >= raw)
    if whole:
        step = max(1, round(step))
    steps = max(1, math.ceil(most / step))
    return steps * step, [i * step for i in range(steps + 1)]


def _month_frame(months: list, most: float, *, width: int, height: int, unit: str, whole: bool) -> dict:
    left, right, top, bottom = 64, 12, 14, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value, ticks = _scale(most, whole=whole)
    step = max(1, -(-len(months) // 12))
    slot = plot_w / len(months)
    return {"width": width, "height": height, "left": left, "top": top, "plot_w": plot_w, "plot_h": plot_h,
            "base": top + plot_h, "right_x": width - right, "slot": slot, "top_value": top_value,
            "ticks": [{"y": round(top + plot_h * (1 - value / top_value), 1), "label": compact(value) + unit}
                      for value in ticks],
            "labels": [{"x": round(left + slot * (i + 0.5), 1), "month": month}
                       for i, month in enumerate(months) if i % step == 0],
            "label_y": top + plot_h + 16, "x_title_y": height - 8, "x_title_x": round(left + plot_w / 2, 1),
            "y_title_x": 14, "y_title_y": round(top + plot_h / 2, 1)}


def _legend(series) -> list[dict]:
    return [{"series": j, "label": label} for j, (_, label, _) in enumerate(series)]


def month_bars(months: list, series: list[tuple[str, str, list[float]]], *, stacked: bool, width: int = 720,
               height: int = 260) -> dict | None:
    """Bars per month: one stack of every series (``stacked``) or the series side by side, on one scale."""
    if not months or not series:
        return None
    if stacked:
        most = max(sum(values[i] for _, _, values in series) for i in range(len(months)))
    else:
        most = max(max(values) for _, _, values in series)
    frame = _month_frame(months, most, width=width, height=height, unit="", whole=True)
    scale, slot = frame["plot_h"] / frame["top_value"], frame["slot"]
    group_w = min(56.0, slot * 0.8)
    bar_w = group_w if stacked else group_w / len(series)
    bars = []
    for i, month in enumerate(months):
        x0, floor = frame["left"] + slot * i + (slot - group_w) / 2, frame["base"]
        for j, (key, label, values) in enumerate(series):
            value = values[i]
            h = value * scale
            x = x0 if stacked else x0 + j * bar_w
            y = floor - h
            if value:
                bars.append({"x": round(x, 1), "y": round(y, 1), "w": round(max(bar_w - (0 if stacked else 1), 1), 1),
                             "h": round(h, 1), "value": value, "series": j, "key": key, "label": label,
                             "month": month})
            if stacked:
                floor = y
    return {**frame, "bars": bars, "legend": _legend(series)}


def month_lines(months: list, series: list[tuple[str, str, list[float | None]]], *, width: int = 720,
                height: int = 260, unit: str = "") -> dict | None:
    """Lines per month, one per series; a month without a value (None) breaks the line rather than reading 0."""
    present = [v for _, _, values in series for v in values if v is not None]
    if not months or not series:
        return None
    frame = _month_frame(months, max(present, default=0), width=width, height=height, unit=unit, whole=False)
    scale = frame["plot_h"] / frame["top_value"]
    lines = []
    for j, (key, label, values) in enumerate(series):
        points, segments, run = [], [], []
        for i, value in enumerate(values):
            if value is None:
                if run:
                    segments.append(run)
                run = []
                continue
            point = {"x": round(frame["left"] + frame["slot"] * (i + 0.5), 1),
                     "y": round(frame["base"] - value * scale, 1), "value": value, "month": months[i]}
            points.append(point)
            run.append(point)
        if run:
            segments.append(run)
        lines.append({"series": j, "key": key, "label": label, "points": points,
                      "polylines": [" ".join(f"{p['x']},{p['y']}" for p in run) for run in segments if len(run) > 1]})
    return {**frame, "lines": lines, "legend": _legend(series)}
