"""Geometry of the per-person weekly openings chart, drawn on the server as SVG (no JavaScript needed).

Small multiples: one strip per person, one bar per week on one shared scale, the part of each bar that was
outside the person's own assigned cases drawn darker; the page shows the same numbers in a table.
"""

from __future__ import annotations

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
