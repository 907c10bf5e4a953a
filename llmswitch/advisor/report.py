"""The terminal summary of an `advise` run (plain text, fixed-width tables, one-line verdicts)."""

from __future__ import annotations

from typing import Any

from llmswitch.advisor.results import percent

__all__ = ["format_summary"]

STOP_REASONS = {
    "complete": "complete",
    "decided": "stopped early: every candidate decided",
    "budget": "stopped: budget reached",
}


def _ci(e: dict[str, float] | None) -> str:
    if e is None:
        return "-"
    return f"{e['value'] * 100:.0f} % [{e['low'] * 100:.0f}–{e['high'] * 100:.0f}]"


def _secs(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.0f}ms" if x < 1 else f"{x:.2f}s"


def _money(x: float | None) -> str:
    if x is None:
        return "unknown"
    return f"${x:,.2f}" if x >= 1 else f"${x:,.4f}"


def _ratio(e: dict[str, float] | None) -> str:
    if e is None:
        return "-"
    return f"{e['value']:.1f}× [{e['low']:.1f}–{e['high']:.1f}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]


HEADER = ["model", "n", "win", "tie", "loss", "not worse", "$/1k req", "× cheaper", "p50", "p95", "TTFT p50"]


def model_rows(s: dict[str, Any]) -> list[list[str]]:
    """The summary table: the baseline, then one row per candidate (columns as in `HEADER`)."""
    base, lat = s["baseline"], s["baseline"]["latency"]
    rows = [[f"{base['model']} (baseline)", "", "", "", "", "", _money(base["cost_per_1k"]), ""]]
    rows[0] += [_secs(lat["p50_s"]), _secs(lat["p95_s"]), _secs(lat["ttft_p50_s"])]
    for c in s["candidates"]:
        r, lat = c["rates"] or {}, c["latency"]
        rates = [_ci(r.get(k)) for k in ("win", "tie", "loss", "not_worse")]
        cost = [_money(c["cost_per_1k"]), _ratio(c["cheaper"])]
        rows.append(
            [
                c["model"],
                str(c["n"]),
                *rates,
                *cost,
                *(_secs(lat[k]) for k in ("p50_s", "p95_s", "ttft_p50_s")),
            ]
        )
    return rows


def format_summary(s: dict[str, Any]) -> str:
    run, base, judge = s["run"], s["baseline"], s["judge"]
    spend = run["spend_usd"]
    stop = STOP_REASONS.get(run["stop_reason"], run["stop_reason"])
    lines = [
        f"llmswitch advise: {', '.join(c['model'] for c in s['candidates'])} vs {base['model']}"
        f" (judge {judge['model']}, prompt {judge['prompt_version']})",
        f"Traffic: {run['traffic']} from {run['source']}; sample of {run['sample_size']}"
        f" (stratified by category and tags, seed {run['seed']})",
        f"Replayed {run['completed']}/{run['sample_size']} requests ({stop}); spent {_money(spend['total'])}"
        f" (replays {_money(spend['replay'])}, judge {_money(spend['judge'])});"
        f" {run['calls_made']} calls made, {run['calls_reused']} reused from {run['state_dir']}",
        "",
    ]
    rows, header = model_rows(s), HEADER
    lines += _table(header, rows)
    cats = sorted({cat["category"] for c in s["candidates"] for cat in c["categories"]})
    if cats and s["candidates"]:
        lines += ["", "Not worse by category (95 % CI):"]
        crow = []
        for cat in cats:
            row = [cat]
            count = "0"
            for c in s["candidates"]:
                found = next((x for x in c["categories"] if x["category"] == cat), None)
                count = str(found["requests"]) if found else count
                row.append(_ci(found["rates"]["not_worse"]) if found and found["rates"] else "-")
            crow.append([row[0], count, *row[1:]])
        lines += _table(["category", "requests", *(c["model"] for c in s["candidates"])], crow)
    lines.append("")
    consistency = judge["position_consistency"]
    lines.append(
        f"Judge: {judge['orders_asked']} verdicts asked ({judge['asks']} calls, {judge['retries']} retries),"
        f" {judge['dropped_orders']} unparseable and dropped;"
        f" same verdict in both orders {percent(consistency) if consistency is not None else '-'}"
    )
    for c in s["candidates"]:
        notes = [f"{k} {v}" for k, v in sorted(c["decided_by"].items()) if k != "judge"]
        checks = c["checks"]
        if checks["json_valid"]:
            notes.append(f"valid JSON {percent(checks['json_valid']['rate'])}")
        if checks["reference_correct"]:
            notes.append(f"reference answer right {percent(checks['reference_correct']['rate'])}")
        if checks["agrees_with_baseline"]:
            notes.append(f"same final answer as baseline {percent(checks['agrees_with_baseline']['rate'])}")
        if notes:
            lines.append(f"  {c['model']}: " + "; ".join(notes))
    lines += ["", "Verdicts:"] + [f"  {c['verdict']}" for c in s["candidates"]]
    return "\n".join(lines)
