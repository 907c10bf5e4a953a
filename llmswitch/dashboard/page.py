"""The dashboard page: one self-contained HTML document (inline CSS and SVG, no script, no CDN), drawn
from `rankings()`'s data. Every text that comes from the ledger or the catalog is escaped."""

from __future__ import annotations

import time
from html import escape
from typing import Any

__all__ = ["render_page"]

PALETTE = ["#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04", "#be123c",
           "#0d9488", "#4f46e5", "#9ca3af"]  # fmt: skip
COUNTRIES = {"CN": "China", "US": "United States", "FR": "France", "GB": "United Kingdom", "CA": "Canada",
             "DE": "Germany", "IL": "Israel", "KR": "South Korea", "JP": "Japan", "AE": "UAE",
             "SG": "Singapore", "IN": "India", "CH": "Switzerland"}  # fmt: skip

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;margin:0;
background:#f9fafb}
main{max-width:1100px;margin:0 auto;padding:24px}h1{font-size:22px;margin:0 0 4px}
h2{font-size:16px;margin:0 0 10px}.sub{color:#4b5563;margin:0 0 16px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px;margin:12px 0;overflow-x:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:0 12px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px}
.kpi b{display:block;font-size:20px}.kpi span{color:#6b7280;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:5px 8px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
.left td:nth-child(-n+4),.left th:nth-child(-n+4){text-align:left}th{background:#f3f4f6;font-weight:600}
.bar{display:inline-block;height:10px;border-radius:2px;vertical-align:middle;margin-right:6px}
.muted{color:#6b7280}svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#374151}
"""


def render_page(data: dict[str, Any], *, title: str = "llmswitch rankings") -> str:
    w = data["window"]
    days = w["since_seconds"] / 86_400
    span = f"{_date(w['start'])} – {_date(w['end'])} ({days:g} day{'s' if days != 1 else ''})"
    parts = [
        f"<h1>{escape(title)}</h1><p class='sub'>Served traffic, {escape(span)}, from the ledger. A "
        "request counts for the model that served it; labs, countries and open weights come from the "
        "model catalog.</p>",
        _kpis(data),
        _card("Top models by tokens", _models(data["models"])),
        _card("Tokens over time", _series_svg(data["series"])),
        "<div class='grid'>",
        _card("By model origin (lab's country)", _share_table(data["origins"], "origin", _country)),
        _card("Open vs closed weights", _share_table(data["weights"], "weights", str)),
        _card("By lab", _share_table(data["labs"], "lab", str)),
        _card("Self-hosted vs API", _share_table(data["hosting"], "hosting", str)),
        _card("By client key", _share_table(data["keys"], "key", str)),
        "</div>",
        _card("By task category", _categories(data["categories"])),
        _card("Providers", _providers(data["providers"])),
    ]
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>"
    )


def _date(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def _card(heading: str, body: str) -> str:
    return f"<section class='card'><h2>{escape(heading)}</h2>{body}</section>"


def _money(usd: float | None) -> str:
    if usd is None:
        return "–"
    return f"${usd:,.2f}" if abs(usd) >= 1 else f"${usd:.6f}".rstrip("0").rstrip(".")


def _tokens(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f} %"


def _bar(share: float | None, color: str = PALETTE[0]) -> str:
    width = 0 if share is None else max(1, round(share * 80))
    return f"<span class='bar' style='width:{width}px;background:{color}'></span>{_pct(share)}"


def _country(code: str) -> str:
    return f"{COUNTRIES[code]} ({code})" if code in COUNTRIES else code


def _kpis(data: dict[str, Any]) -> str:
    t, s = data["total"], data["savings"]
    unpriced = t["unpriced_requests"]
    items = [
        (f"{t['requests']:,}", "requests served"),
        (_tokens(t["tokens"]), "tokens"),
        (_money(t["cost_usd"]), "spend" + (f" ({unpriced:,} unpriced)" if unpriced else "")),
    ]
    if s and "error" not in s:
        items.append((_money(s["saved_usd"]), f"saved vs {s['baseline']} ({_pct(s['saved_share'])})"))
        items.append((_money(s["baseline_cost_usd"]), f"the same tokens on {s['baseline']}"))
    elif s:
        items.append(("–", s["error"]))
    cells = "".join(f"<div class='kpi'><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in items)
    return f"<section class='card kpis'>{cells}</section>"


def _table(head: list[str], rows: list[list[str]], css: str = "") -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='{css}'><tr>{th}</tr>{body}</table>"


def _models(models: list[dict[str, Any]]) -> str:
    if not models:
        return "<p class='muted'>No served requests in this window.</p>"
    rows = []
    for i, m in enumerate(models, 1):
        weights = {True: "open", False: "closed", None: "?"}[m["open_weights"]]
        rows.append([
            f"{i}. {escape(m['model'])}", escape(m["lab"] or "?"), escape(_country(m["origin"] or "?")),
            weights, _tokens(m["tokens"]), _bar(m["token_share"], PALETTE[(i - 1) % 10]),
            f"{m['requests']:,}", _money(m["cost_usd"]),
        ])  # fmt: skip
    return _table(["model", "lab", "origin", "weights", "tokens", "share", "requests", "cost"], rows, "left")


def _share_table(rows: list[dict[str, Any]], label: str, name: Any) -> str:
    if not rows:
        return "<p class='muted'>No data.</p>"
    body = [
        [escape(name(r["name"])), _tokens(r["tokens"]), _bar(r["token_share"], PALETTE[i % 10]),
         f"{r['requests']:,}", _money(r["cost_usd"])]
        for i, r in enumerate(rows)
    ]  # fmt: skip
    return _table([label, "tokens", "share", "requests", "cost"], body)


def _categories(c: dict[str, Any]) -> str:
    if not c["classified"]:
        return (
            "<p class='muted'>Categories are read from logged prompts: turn on <code>logging.bodies</code> "
            "to see what the traffic is for.</p>"
        )
    rows = [
        [escape(r["category"]), f"{r['requests']:,}", _bar(r["share"], PALETTE[i % 10]), _tokens(r["tokens"])]
        for i, r in enumerate(c["rows"])
    ]
    note = (
        f"<p class='muted'>The newest {c['classified']:,} logged prompts of the window "
        f"(at most {c['sample_limit']:,}).</p>"
    )
    return _table(["category", "requests", "share", "tokens"], rows) + note


def _providers(providers: list[dict[str, Any]]) -> str:
    if not providers:
        return "<p class='muted'>No requests in this window.</p>"
    rows = [
        [escape(p["provider"] or "?"), f"{p['requests']:,}", f"{p['attempts']:,}", _pct(p["error_rate"]),
         "–" if p["p50_latency_ms"] is None else f"{p['p50_latency_ms']:,.0f} ms", _money(p["cost_usd"])]
        for p in providers
    ]  # fmt: skip
    return _table(["provider", "requests", "attempts", "failed", "p50 latency", "cost"], rows)


def _series_svg(series: dict[str, Any]) -> str:
    """Stacked bars: one per bucket, a segment per model (the top ones, then "other")."""
    per: dict[str, list[int]] = series["tokens"]
    n = series["buckets"]
    totals = [sum(v[i] for v in per.values()) for i in range(n)]
    peak = max(totals, default=0)
    if not peak:
        return "<p class='muted'>No served tokens in this window.</p>"
    width, height, left, bottom = 1000, 220, 56, 24
    step = (width - left) / n
    bar_w = max(2.0, step * 0.8)
    out = [f"<svg viewBox='0 0 {width} {height + 40 + 16 * ((len(per) + 3) // 4)}' width='100%' role='img'>"]
    for frac in (0.0, 0.5, 1.0):
        y = bottom + (1 - frac) * (height - bottom)
        out.append(f"<line x1='{left}' x2='{width}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e5e7eb'/>")
        tick = _tokens(round(peak * frac))
        out.append(f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>{tick}</text>")
    colors = {m: PALETTE[i % 10] if m != "other" else PALETTE[10] for i, m in enumerate(per)}
    for i in range(n):
        x, y = left + i * step + (step - bar_w) / 2, float(height)
        for model, values in per.items():
            h = values[i] / peak * (height - bottom)
            if h > 0:
                y -= h
                out.append(
                    f"<rect x='{x:.1f}' y='{y:.1f}' width='{bar_w:.1f}' height='{h:.1f}' "
                    f"fill='{colors[model]}'><title>{escape(model)}: {values[i]:,} tokens</title></rect>"
                )
        if n <= 14 or i % max(1, n // 10) == 0:
            label = time.strftime("%m-%d", time.gmtime(series["start"] + i * series["step_seconds"]))
            out.append(f"<text x='{x + bar_w / 2:.1f}' y='{height + 14}' text-anchor='middle'>{label}</text>")
    for j, model in enumerate(per):
        lx, ly = left + (j % 4) * 230, height + 36 + 16 * (j // 4)
        out.append(f"<rect x='{lx}' y='{ly - 9}' width='10' height='10' fill='{colors[model]}'/>")
        out.append(f"<text x='{lx + 14}' y='{ly}'>{escape(model[:34])}</text>")
    out.append("</svg>")
    return "".join(out)
