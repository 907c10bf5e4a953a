"""The HTML report: one self-contained file (inline CSS and SVG charts drawn here, no script, no CDN).

Charts: cost per 1,000 requests (log scale) against the not-worse rate with its 95 % interval, one
point per candidate, the baseline's cost and the threshold drawn as reference lines; win / tie / loss
bars per candidate; not-worse rate per category with intervals. Then the tables of the terminal
summary, the judge's figures, the run's parameters and the first disagreements as examples.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from llmswitch.advisor.report import HEADER, STOP_REASONS, _ci, _money, _ratio, model_rows
from llmswitch.advisor.results import percent

__all__ = ["render_html"]

PALETTE = ["#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04", "#4b5563"]
WIN, TIE, LOSS = "#16a34a", "#a3a3a3", "#dc2626"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;margin:0;
background:#f9fafb}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#4b5563;margin:0 0 16px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px;margin:12px 0;overflow-x:auto}
.verdict{font-size:15px;margin:6px 0;padding:8px 12px;border-left:4px solid #9ca3af;background:#f3f4f6}
.verdict.meets{border-color:#16a34a;background:#f0fdf4}.verdict.below{border-color:#dc2626;background:#fef2f2}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:5px 8px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f3f4f6;font-weight:600}
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:12px;align-items:start}
.compact td,.compact th{font-size:12px}.compact td:last-child{white-space:normal}
.muted{color:#6b7280}.small{font-size:12px}
pre{white-space:pre-wrap;word-break:break-word;background:#f3f4f6;padding:8px;border-radius:4px;
max-height:220px;overflow:auto;font-size:12px;margin:4px 0}
svg text{font-family:system-ui,sans-serif}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}dt{color:#6b7280}dd{margin:0}
"""


def _t(x: float, y: float, text: str, size: int = 11, anchor: str = "middle", fill: str = "#374151",
       weight: str = "normal") -> str:  # fmt: skip
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"'
        f' font-weight="{weight}">{escape(text)}</text>'
    )


def _line(
    x1: float, y1: float, x2: float, y2: float, color: str = "#eee", width: float = 1, dash: str = ""
) -> str:
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}"'
        f' stroke-width="{width}"{extra}/>'
    )


def _rect(x: float, y: float, w: float, h: float, color: str, opacity: float = 1.0) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{color}" opacity="{opacity}"/>'
    )


def _whisker(x: float, y_low: float, y_high: float, color: str, width: float) -> str:
    """A vertical interval with end caps."""
    return (
        _line(x, y_low, x, y_high, color, width)
        + _line(x - 4, y_low, x + 4, y_low, color, width)
        + _line(x - 4, y_high, x + 4, y_high, color, width)
    )


def _nice_log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**e
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def _scatter(s: dict[str, Any]) -> str:
    """Cost per 1k requests (log x) vs not-worse rate (y) with 95 % intervals."""
    w, h, left, right, top, bottom = 520, 340, 60, 20, 20, 50
    cands: list[dict[str, Any]] = s["candidates"]
    pts = [(i, c) for i, c in enumerate(cands) if c["rates"] and (c["cost_per_1k"] or 0) > 0]
    base_cost = s["baseline"]["cost_per_1k"]
    costs = [c["cost_per_1k"] for _, c in pts] + ([base_cost] if base_cost else [])
    if not costs:
        return '<p class="muted">No costs known: no cost/quality chart.</p>'
    lo, hi = math.log10(min(costs) / 2), math.log10(max(costs) * 2)
    threshold = float(s["run"]["threshold"])
    lows = [float(c["rates"]["not_worse"]["low"]) - 0.05 for _, c in pts]
    ymin = math.floor(max(0.0, min([threshold - 0.1, *lows])) * 10) / 10

    def x(v: float) -> float:
        return left + (math.log10(v) - lo) / (hi - lo) * (w - left - right)

    def y(v: float) -> float:
        return top + (1 - (v - ymin) / (1 - ymin)) * (h - top - bottom)

    out = [f'<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="cost versus quality">']
    for tick in [ymin + i * (1 - ymin) / 5 for i in range(6)]:
        out.append(_line(left, y(tick), w - right, y(tick)))
        out.append(_t(left - 6, y(tick) + 4, f"{tick * 100:.0f} %", anchor="end"))
    for tick in _nice_log_ticks(10**lo, 10**hi):
        out.append(_line(x(tick), top, x(tick), h - bottom))
        out.append(_t(x(tick), h - bottom + 16, f"${tick:g}"))
    out.append(_t((left + w - right) / 2, h - 10, "cost per 1,000 requests (log scale)", 12))
    out.append(
        f'<text transform="translate(14 {(top + h - bottom) / 2}) rotate(-90)" font-size="12"'
        ' text-anchor="middle" fill="#374151">not worse than the baseline</text>'
    )
    ty = y(threshold)
    out.append(_line(left, ty, w - right, ty, "#6b7280", 1, "5 4"))
    out.append(_t(w - right - 4, ty - 5, f"threshold {percent(threshold)}", 11, "end", "#6b7280"))
    if base_cost:
        bx = x(base_cost)
        out.append(_line(bx, top, bx, h - bottom, "#111827", 1, "2 3"))
        out.append(_t(bx - 4, top + 12, f"baseline {s['baseline']['model']}", 11, "end", "#111827"))
    centres = [(x(c["cost_per_1k"]), y(c["rates"]["not_worse"]["value"])) for _, c in pts]
    taken: list[tuple[float, float, float, float]] = [(cx - 7, cy - 7, cx + 7, cy + 7) for cx, cy in centres]
    for (i, c), (cx, cy) in zip(pts, centres, strict=True):
        color = PALETTE[i % len(PALETTE)]
        nw = c["rates"]["not_worse"]
        out.append(_whisker(cx, y(nw["low"]), y(nw["high"]), color, 2))
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{color}"/>')
        lx, ly, anchor = _place_label(cx, cy, 6.3 * len(c["model"]), taken, left, w - right)
        out.append(_t(lx, ly, c["model"], 11, anchor, color, "600"))
    out.append("</svg>")
    return "".join(out)


def _place_label(
    cx: float, cy: float, width: float, taken: list[tuple[float, float, float, float]], x0: float, x1: float
) -> tuple[float, float, str]:
    """A label position next to a point that overlaps no earlier label or point (right, left, then
    right and left again further up and down); the box it takes is added to `taken`."""
    for dy in (0, -14, 14, -28, 28, -42, 42):
        for side in ("start", "end"):
            bx0 = cx + 9 if side == "start" else cx - 9 - width
            box = (bx0, cy + dy - 8, bx0 + width, cy + dy + 4)
            inside = x0 <= box[0] and box[2] <= x1
            clear = all(box[2] < t[0] or box[0] > t[2] or box[3] < t[1] or box[1] > t[3] for t in taken)
            if inside and clear:
                taken.append(box)
                return (cx + 9 if side == "start" else cx - 9), cy + dy + 4, side
    return cx + 9, cy + 4, "start"


def _legend(items: list[tuple[str, str]], x0: float, y0: float, step: float) -> str:
    out = []
    for j, (label, color) in enumerate(items):
        lx = x0 + j * step
        out.append(_rect(lx, y0 - 9, 10, 10, color))
        out.append(_t(lx + 14, y0, label, 11, "start"))
    return "".join(out)


def _stacked(s: dict[str, Any]) -> str:
    """Win / tie / loss shares per candidate."""
    cands = [c for c in s["candidates"] if c["rates"]]
    if not cands:
        return ""
    left = 20 + 7 * max(len(c["model"]) for c in cands)  # room for the longest name at 12 px
    w, right, bar, gap = max(520, left + 300), 20, 26, 14
    h = 30 + len(cands) * (bar + gap) + 30
    out = [f'<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="win tie loss">']
    span = w - left - right
    for i, c in enumerate(cands):
        yy = 20 + i * (bar + gap)
        out.append(_t(left - 8, yy + bar / 2 + 4, c["model"], 12, "end"))
        xx = float(left)
        for key, color in (("win", WIN), ("tie", TIE), ("loss", LOSS)):
            v = c["rates"][key]["value"]
            out.append(_rect(xx, yy, v * span, bar, color))
            if v >= 0.07:
                label = f"{v * 100:.0f} %"
                out.append(_t(xx + v * span / 2, yy + bar / 2 + 4, label, 11, fill="#fff", weight="600"))
            xx += v * span
    out.append(_legend([("win", WIN), ("tie", TIE), ("loss", LOSS)], left, h - 14, 80))
    out.append("</svg>")
    return "".join(out)


def _category_names(cands: list[dict[str, Any]]) -> list[str]:
    """Categories, the most requested first."""
    sizes: dict[str, int] = {}
    for c in cands:
        for x in c["categories"]:
            sizes[x["category"]] = max(sizes.get(x["category"], 0), x["requests"])
    return sorted(sizes, key=lambda k: (-sizes[k], k))


def _categories(s: dict[str, Any]) -> str:
    """Not-worse rate per category and candidate, with 95 % intervals and the threshold."""
    cands = s["candidates"]
    cats = _category_names(cands)
    if not cats:
        return ""
    w, h, left, right, top, bottom = 1040, 300, 50, 20, 20, 56
    group = (w - left - right) / len(cats)
    bw = min(40.0, group * 0.8 / max(1, len(cands)))

    def y(v: float) -> float:
        return top + (1 - v) * (h - top - bottom)

    out = [f'<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="not worse by category">']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        out.append(_line(left, y(tick), w - right, y(tick)))
        out.append(_t(left - 6, y(tick) + 4, f"{tick * 100:.0f} %", anchor="end"))
    for gi, cat in enumerate(cats):
        gx = left + gi * group + (group - bw * len(cands)) / 2
        count = 0
        for ci, c in enumerate(cands):
            found = next((x for x in c["categories"] if x["category"] == cat), None)
            if not found:
                continue
            count = found["requests"]
            if not found["rates"]:
                continue
            nw = found["rates"]["not_worse"]
            bx = gx + ci * bw
            out.append(_rect(bx + 2, y(nw["value"]), bw - 4, y(0) - y(nw["value"]), PALETTE[ci % 8], 0.85))
            out.append(_whisker(bx + bw / 2, y(nw["low"]), y(nw["high"]), "#111827", 1.5))
        cx = left + gi * group + group / 2
        out.append(_t(cx, h - bottom + 18, cat, 12, weight="600"))
        out.append(_t(cx, h - bottom + 33, f"{count} requests", 11, fill="#6b7280"))
    ty = y(s["run"]["threshold"])
    out.append(_line(left, ty, w - right, ty, "#6b7280", 1, "5 4"))
    out.append(_legend([(c["model"], PALETTE[i % 8]) for i, c in enumerate(cands)], left, h - 3, 220))
    out.append("</svg>")
    return "".join(out)


def _summary_table(s: dict[str, Any]) -> str:
    return _html_table(HEADER, model_rows(s))


def _relative_table(s: dict[str, Any]) -> str:
    """Per candidate: cost ratio and latency changes, and how the comparisons were decided."""
    head = ["candidate", "× cheaper", "p50", "TTFT p50", "decided by"]
    rows = []
    for c in s["candidates"]:
        changes = [_signed(c["p50_change"]), _signed(c["ttft_p50_change"])]
        decided = ", ".join(f"{k} {v}" for k, v in sorted(c["decided_by"].items(), key=lambda kv: -kv[1]))
        cheaper = f"{c['cheaper']['value']:.1f}×" if c["cheaper"] else "-"
        rows.append([c["model"], cheaper, *changes, decided])
    return _html_table(head, rows)


def _signed(x: float | None) -> str:
    if x is None:
        return "-"
    return "0 %" if round(abs(x) * 100) == 0 else f"{'−' if x < 0 else '+'}{abs(x) * 100:.0f} %"


def _html_table(head: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """A table whose first `text_columns` columns are left-aligned text, the rest numbers."""

    def cell(tag: str, i: int, v: str) -> str:
        style = ' style="text-align:left"' if i < text_columns else ""
        return f"<{tag}{style}>{escape(v)}</{tag}>"

    th = "".join(cell("th", i, h) for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _category_table(s: dict[str, Any]) -> str:
    """One row per category and candidate (long format: stays narrow with many candidates)."""
    head = ["category", "candidate", "requests", "win", "tie", "loss", "not worse", "× cheaper"]
    rows = []
    for cat in _category_names(s["candidates"]):
        for i, c in enumerate(s["candidates"]):
            f = next((x for x in c["categories"] if x["category"] == cat), None)
            if f is None:
                continue
            r = f["rates"] or {}
            rates = [_ci(r.get(k)) for k in ("win", "tie", "loss", "not_worse")]
            rows.append([cat if i == 0 else "", c["model"], str(f["requests"]), *rates, _ratio(f["cheaper"])])
    return _html_table(head, rows, text_columns=2)


def _pre(text: str) -> str:
    return f"<pre>{escape(text[:1500])}</pre>"


def _examples(rows: list[dict[str, Any]], limit: int = 6) -> str:
    losses = [r for r in rows if r["outcome"] == "loss"][:limit]
    if not losses:
        return '<p class="muted">No losses.</p>'
    out = []
    for r in losses:
        what = (
            f"{r['candidate']} lost · {r['category']} · decided by {r['decided_by']} · request {r['request']}"
        )
        base, cand = (r["baseline"] or {}).get("answer", ""), (r["candidate_call"] or {}).get("answer", "")
        out.append(
            f'<div class="card"><div class="small muted">{escape(what)}</div>{_pre(r["prompt"])}'
            f'<div class="grid"><div><b>baseline</b>{_pre(base)}</div>'
            f"<div><b>candidate</b>{_pre(cand)}</div></div></div>"
        )
    return "".join(out)


def _run_params(s: dict[str, Any], verdicts_name: str) -> dict[str, str]:
    run, judge, spend = s["run"], s["judge"], s["run"]["spend_usd"]
    stop = STOP_REASONS.get(run["stop_reason"], run["stop_reason"])
    consistency = judge["position_consistency"]
    return {
        "traffic": f"{run['traffic']} from {run['source']}",
        "sample": f"{run['completed']} of {run['sample_size']} replayed ({stop}); seed {run['seed']}",
        "early stopping": f"threshold {percent(run['threshold'])}, α = {run['alpha']}, a look every"
        f" {run['look_every']} requests ({run['looks']} made)",
        "spend": f"{_money(spend['total'])} (replays {_money(spend['replay'])},"
        f" judge {_money(spend['judge'])})",
        "judge": f"{judge['model']}, prompt {judge['prompt_version']}; {judge['orders_asked']} verdicts,"
        f" {judge['retries']} retries, {judge['dropped_orders']} dropped"
        + (f"; same verdict in both orders {percent(consistency)}" if consistency is not None else ""),
        "config": run["config"],
        "state": run["state_dir"],
        "raw verdicts": verdicts_name,
    }


def render_html(s: dict[str, Any], rows: list[dict[str, Any]], verdicts_name: str) -> str:
    verdicts = "".join(
        f'<div class="verdict {c["decision"]}">{escape(c["verdict"])}</div>' for c in s["candidates"]
    )
    params = _run_params(s, verdicts_name)
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in params.items())
    title = f"llmswitch advise: {', '.join(c['model'] for c in s['candidates'])} vs {s['baseline']['model']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body><main>
<h1>{escape(title)}</h1>
<p class="sub">Should you switch? Your own traffic replayed through the gateway, answers compared by a judge
(both orders) and by exact checks. Intervals are 95 % bootstrap intervals.</p>
<div class="card">{verdicts}</div>
<div class="grid">
<div class="card"><h2 style="margin-top:0">Cost vs quality</h2>{_scatter(s)}</div>
<div class="card"><h2 style="margin-top:0">Win / tie / loss against the baseline</h2>{_stacked(s)}
<h2>Against the baseline</h2><div class="compact">{_relative_table(s)}</div></div>
</div>
<div class="card"><h2 style="margin-top:0">Not worse, by category</h2>{_categories(s)}</div>
<h2>Summary</h2><div class="card">{_summary_table(s)}</div>
<h2>By category</h2><div class="card">{_category_table(s)}</div>
<h2>Run</h2><div class="card"><dl>{dl}</dl></div>
<h2>Losses, first examples</h2>{_examples(rows)}
</main></body></html>
"""
