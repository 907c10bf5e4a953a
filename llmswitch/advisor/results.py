"""From the run state to the numbers: per candidate win / tie / loss and not-worse rates with 95 %
bootstrap intervals, cost per 1,000 requests and the ratio to the baseline (paired bootstrap), latency
p50/p95 and time to first token, checks, the same per category, judge statistics, and one-line
verdicts. Everything is computed on the requests completed in the sample, so a resumed or re-run run
reports the same numbers for the same state.

The verdict compares the not-worse interval with the threshold θ: entirely above → "meets the θ
bar", entirely below → "below the θ bar", else "undecided".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from llmswitch.advisor.judge import JUDGE_PROMPT_VERSION
from llmswitch.advisor.outcomes import ORDERS, Comparison, comparison_json
from llmswitch.advisor.runner import Plan, RunResult, comparisons
from llmswitch.advisor.state import CallRecord, RunState
from llmswitch.advisor.stats import Estimate, bootstrap_outcomes, bootstrap_ratio, estimate_json, percentile
from llmswitch.advisor.traffic import Exchange

__all__ = ["percent", "summarize", "verdict_rows"]


def percent(x: float, digits: int = 0) -> str:
    return f"{x * 100:.{digits}f} %"


def _signed_percent(x: float) -> str:
    return "0 %" if round(abs(x) * 100) == 0 else f"{'−' if x < 0 else '+'}{abs(x) * 100:.0f} %"


def _latency(calls: Sequence[CallRecord]) -> dict[str, float | None]:
    lat = [c.latency_s for c in calls if c.ok and c.latency_s is not None]
    ttft = [c.ttft_s for c in calls if c.ok and c.ttft_s is not None]
    return {
        "p50_s": percentile(lat, 50),
        "p95_s": percentile(lat, 95),
        "ttft_p50_s": percentile(ttft, 50),
        "ttft_p95_s": percentile(ttft, 95),
    }


def _rate(flags: Sequence[bool | None]) -> dict[str, Any] | None:
    seen = [f for f in flags if f is not None]
    return {"rate": sum(seen) / len(seen), "n": len(seen)} if seen else None


def _per_1k(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return 1000 * sum(known) / len(known) if known else None


def _change(new: float | None, old: float | None) -> float | None:
    return (new - old) / old if new is not None and old else None


def _cost_ratio(
    state: RunState, xs: Sequence[Exchange], baseline: str, candidate: str, seed: int
) -> Estimate | None:
    base_costs, cand_costs = [], []
    for x in xs:
        b, c = state.calls.get((x.key, baseline)), state.calls.get((x.key, candidate))
        cb = state.call_cost(b) if b is not None and b.ok else None
        cc = state.call_cost(c) if c is not None and c.ok else None
        if cb is not None and cc is not None:
            base_costs.append(cb)
            cand_costs.append(cc)
    if not cand_costs or sum(cand_costs) <= 0:
        return None
    return bootstrap_ratio(base_costs, cand_costs, seed=seed)


def _decision(rates: dict[str, Estimate] | None, threshold: float) -> str:
    if rates is None:
        return "undecided"
    nw = rates["not_worse"]
    return "meets" if nw.low > threshold else "below" if nw.high < threshold else "undecided"


def verdict_line(c: dict[str, Any], threshold: float) -> str:
    rates = c["rates"]
    if rates is None:
        return f"{c['model']}: no comparisons completed"
    nw = rates["not_worse"]
    parts = [f"{c['model']}: not worse on {percent(nw['value'])} ± {percent((nw['high'] - nw['low']) / 2)}"
             " of your traffic"]  # fmt: skip
    ratio = c["cheaper"]
    if ratio is not None:
        v = ratio["value"]
        parts.append(f"{v:.1f}× cheaper" if v >= 1 else f"{1 / v:.1f}× more expensive")
    elif c["cost_per_1k"] == 0:
        parts.append("free")
    else:
        parts.append("cost unknown")
    if c["p50_change"] is not None:
        parts.append(f"p50 {_signed_percent(c['p50_change'])}")
    bar = percent(threshold)
    tail = {
        "meets": f"meets the {bar} bar",
        "below": f"below the {bar} bar",
        "undecided": f"undecided at {bar}",
    }
    return ", ".join(parts) + f" → {tail[c['decision']]}"


def _candidate(
    plan: Plan,
    state: RunState,
    xs: Sequence[Exchange],
    comps: dict[str, dict[str, Comparison]],
    name: str,
    seed: int,
) -> dict[str, Any]:
    mine = [comps[x.key][name] for x in xs]
    counted = [c for c in mine if c.outcome is not None]
    rates = bootstrap_outcomes([c.outcome for c in counted if c.outcome], seed=seed)
    calls = [state.calls[x.key, name] for x in xs if (x.key, name) in state.calls]
    base_calls = [state.calls[x.key, plan.baseline] for x in xs if (x.key, plan.baseline) in state.calls]
    lat, base_lat = _latency(calls), _latency(base_calls)
    by_cat: dict[str, list[Exchange]] = {}
    for x in xs:
        by_cat.setdefault(x.category, []).append(x)
    categories = []
    for cat, cxs in sorted(by_cat.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        outs = [comps[x.key][name].outcome for x in cxs]
        cat_rates = bootstrap_outcomes([o for o in outs if o], seed=seed)
        ratio = _cost_ratio(state, cxs, plan.baseline, name, seed)
        categories.append({
            "category": cat,
            "requests": len(cxs),
            "n": sum(1 for o in outs if o),
            "rates": {k: v.to_json() for k, v in cat_rates.items()} if cat_rates else None,
            "cheaper": estimate_json(ratio),
        })  # fmt: skip
    ratio = _cost_ratio(state, xs, plan.baseline, name, seed)
    out: dict[str, Any] = {
        "model": name,
        "n": len(counted),
        "decided_by": dict(Counter(c.decided_by for c in mine)),
        "dropped": sum(1 for c in mine if c.decided_by == "dropped"),
        "excluded": sum(1 for c in mine if c.decided_by == "baseline error"),
        "errors": sum(1 for c in mine if c.decided_by == "candidate error"),
        "rates": {k: v.to_json() for k, v in rates.items()} if rates else None,
        "cost_per_1k": _per_1k([state.call_cost(c) for c in calls if c.ok]),
        "baseline_cost_per_1k": _per_1k([state.call_cost(c) for c in base_calls if c.ok]),
        "cheaper": estimate_json(ratio),
        "latency": lat,
        "p50_change": _change(lat["p50_s"], base_lat["p50_s"]),
        "ttft_p50_change": _change(lat["ttft_p50_s"], base_lat["ttft_p50_s"]),
        "tokens": {
            "prompt": sum(c.prompt_tokens or 0 for c in calls),
            "completion": sum(c.completion_tokens or 0 for c in calls),
        },
        "checks": {
            "json_valid": _rate([c.json_ok[1] for c in mine]),
            "reference_correct": _rate([c.reference_ok[1] for c in mine]),
            "agrees_with_baseline": _rate([c.agree for c in mine]),
        },
        "decision": _decision(rates, plan.rule.threshold),
        "categories": categories,
    }
    out["verdict"] = verdict_line(out, plan.rule.threshold)
    return out


def _judge_stats(plan: Plan, state: RunState, xs: Sequence[Exchange]) -> dict[str, Any]:
    keys = {x.key for x in xs}
    js = [j for (rid, c, _), j in state.judgements.items() if rid in keys and c in plan.candidates]
    pairs = 0
    consistent = 0
    for x in xs:
        for c in plan.candidates:
            cb, bc = (state.judgements.get((x.key, c, o)) for o in ORDERS)
            if cb and bc and cb.verdict and bc.verdict:
                pairs += 1
                swapped = {"A": "B", "B": "A", "TIE": "TIE"}[bc.verdict]
                consistent += cb.verdict == swapped
    return {
        "model": plan.judge,
        "prompt_version": JUDGE_PROMPT_VERSION,
        "orders_asked": len(js),
        "asks": sum(j.attempts for j in js),
        "retries": sum(j.attempts - 1 for j in js),
        "dropped_orders": sum(1 for j in js if j.verdict is None),
        "position_consistency": consistent / pairs if pairs else None,
        "cost_usd": sum(j.cost_usd or 0.0 for j in js),
    }


def summarize(plan: Plan, state: RunState, result: RunResult, info: dict[str, Any]) -> dict[str, Any]:
    """The whole result as JSON-able data (what `--json` prints and the reports render)."""
    by_key = {x.key: x for x in plan.sample}
    xs = [by_key[k] for k in result.completed]
    comps = {x.key: comparisons(plan, state, x) for x in xs}
    seed = int(info.get("seed", 0))
    base_calls = [state.calls[x.key, plan.baseline] for x in xs if (x.key, plan.baseline) in state.calls]
    candidates = [_candidate(plan, state, xs, comps, c, seed) for c in plan.candidates]
    replay_spend = sum(
        state.call_cost(c) or 0.0
        for c in state.calls.values()
        if c.rid in comps and c.model in [plan.baseline, *plan.candidates]
    )
    judge = _judge_stats(plan, state, xs)
    return {
        "llmswitch_advise": 1,
        "baseline": {
            "model": plan.baseline,
            "cost_per_1k": _per_1k([state.call_cost(c) for c in base_calls if c.ok]),
            "latency": _latency(base_calls),
            "errors": sum(1 for c in base_calls if not c.ok),
            "json_valid": _rate([comps[x.key][plan.candidates[0]].json_ok[0] for x in xs])
            if plan.candidates
            else None,
            "reference_correct": (
                _rate([comps[x.key][plan.candidates[0]].reference_ok[0] for x in xs])
                if plan.candidates
                else None
            ),
        },
        "candidates": candidates,
        "judge": judge,
        "run": {
            **info,
            "judge_prompt_version": JUDGE_PROMPT_VERSION,
            "sample_size": len(plan.sample),
            "completed": len(xs),
            "stop_reason": result.stop_reason,
            "threshold": plan.rule.threshold,
            "alpha": plan.rule.alpha,
            "look_every": plan.rule.every,
            "looks": result.looks,
            "stop_decisions": result.decisions,
            "calls_made": result.calls_made,
            "calls_reused": result.calls_reused,
            "spend_usd": {
                "replay": replay_spend,
                "judge": judge["cost_usd"],
                "total": replay_spend + judge["cost_usd"],
            },
            "categories": dict(Counter(x.category for x in xs)),
        },
    }


def verdict_rows(plan: Plan, state: RunState, result: RunResult) -> list[dict[str, Any]]:
    """One row per (completed request, candidate): the raw verdicts behind every rate."""
    by_key = {x.key: x for x in plan.sample}
    rows = []
    for key in result.completed:
        x = by_key[key]
        users = [m for m in x.request["messages"] if m.get("role") == "user"]
        base = state.calls.get((key, plan.baseline))
        for name, comp in comparisons(plan, state, x).items():
            cand = state.calls.get((key, name))
            rows.append({
                "request": key,
                "category": x.category,
                "tags": x.tags,
                "prompt": str(users[-1]["content"])[:2000] if users else "",
                "candidate": name,
                **comparison_json(comp),
                "verdicts": {o: _judged(state, key, name, o) for o in ORDERS},
                "baseline": _call_json(state, base),
                "candidate_call": _call_json(state, cand),
            })  # fmt: skip
    return rows


def _judged(state: RunState, key: str, name: str, order: str) -> dict[str, Any] | None:
    j = state.judgements.get((key, name, order))
    if j is None:
        return None
    return {"verdict": j.verdict, "attempts": j.attempts, "cost_usd": j.cost_usd, "reply": j.reply[-500:]}


def _call_json(state: RunState, c: CallRecord | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "model": c.model,
        "ok": c.ok,
        "error": c.error,
        "cost_usd": state.call_cost(c),
        "latency_s": c.latency_s,
        "ttft_s": c.ttft_s,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "answer": c.text[:4000],
    }
