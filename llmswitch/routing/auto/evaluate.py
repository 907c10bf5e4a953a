"""Offline evaluation: replay recorded outputs through the real strategies and score the cost–quality curve.

``evaluate`` trains on a folder's ``split.json`` ``train`` ids (or loads a model file), then, for every
test prompt and every operating point of each strategy, runs the *same* ``Strategy.route`` the gateway
runs, with a replay :data:`Caller` that answers with the recorded output text and its recorded cost. Every
call the router makes is paid for (cheap cascade calls included); when a decision leaves the final call to
the caller, the harness makes it, as the gateway would. Quality is the recorded grade of the answer the
client gets.

Metrics (``cost`` = mean USD per prompt, ``quality`` = mean grade):

* ``best_single``: the candidate with the best test quality, and its cost per prompt.
* ``oracle_quality``: mean over prompts of the best grade any candidate reaches (cost ignored).
* ``cost_to_match_best``: the smallest cost, as a fraction of the best single model's, of an operating
  point of the router whose quality is ≥ the best single model's (operating points only, no
  interpolation); null if none.
* ``quality_at_10pct_cost``: the best router quality among operating points costing ≤ 10 % of the best
  single model's cost, **as a fraction of the best single model's quality** (``..._abs``: the quality).
* ``apgr`` — RouteLLM (Ong et al. 2024, arXiv:2406.18665; ``routellm/evals/evaluate.py``): average
  performance gap recovered, (AUC_router − AUC_weak) / (AUC_strong − AUC_weak), where RouteLLM's x axis is
  the share of calls to the strong model. With many models we use the normalised cost
  x = (c − c_weak) / (c_strong − c_weak) ∈ [0, 1], weak = cheapest candidate, strong = best single model;
  the router's quality at x is its non-decreasing cost–quality envelope (linear between operating
  points, the weak model's quality left of its cheapest point, flat right of its dearest).
* ``aiq`` — RouterBench (Hu et al. 2024, arXiv:2403.12031; ``evaluation/AIQ.py``): area under the
  non-decreasing convex hull of the router's (cost, quality) points, extended flat to the largest cost
  of any curve compared (all single models included), divided by that cost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.routing.auto.config import AutoRouteConfig, CascadeConfig
from llmswitch.routing.auto.data import RoutingData, load_routing_data
from llmswitch.routing.auto.model import RouterModel
from llmswitch.routing.auto.strategies import Answer, RouterContext, Strategy, build_strategy
from llmswitch.routing.auto.train import LAMBDAS, train_router

FloatArray = npt.NDArray[np.float64]
log = logging.getLogger(__name__)

__all__ = [
    "aiq",
    "apgr",
    "bootstrap_intervals",
    "cost_to_match",
    "evaluate",
    "non_decreasing_hull",
    "pareto_front",
    "plot",
    "quality_at_cost",
]

TARGETS = [round(float(t), 3) for t in np.linspace(0.0, 1.0, 41)]

Point = tuple[float, float]  # (cost, quality)


# ------------------------------------------------------------------------------------------------ metrics


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """Points not dominated by a cheaper-or-equal point of higher-or-equal quality, by increasing cost."""
    out: list[Point] = []
    for c, q in sorted(points, key=lambda p: (p[0], -p[1])):
        if not out or q > out[-1][1]:
            out.append((c, q))
    return out


def non_decreasing_hull(points: Sequence[Point]) -> list[Point]:
    """Upper convex hull of ``points`` that never decreases in quality (RouterBench's AIQ curve)."""
    pts = sorted(set(points))
    hull: list[Point] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # remove hull[-1] if it lies on or below the segment hull[-2] -> p
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    out: list[Point] = []
    for c, q in hull:
        if not out or q > out[-1][1]:
            out.append((c, q))
    return out


def _envelope(points: Sequence[Point], x: float, left: float) -> float:
    """Quality of the non-decreasing, piecewise-linear Pareto envelope at cost ``x``."""
    front = pareto_front(points)
    if not front or x < front[0][0]:
        return left
    for (c1, q1), (c2, q2) in itertools.pairwise(front):
        if c1 <= x <= c2:
            return q1 if c2 == c1 else q1 + (q2 - q1) * (x - c1) / (c2 - c1)
    return front[-1][1]


def apgr(points: Sequence[Point], weak: Point, strong: Point, grid: int = 1001) -> float | None:
    """RouteLLM's APGR on a cost axis normalised between the weak and the strong model (see module doc)."""
    (cw, qw), (cs, qs) = weak, strong
    if cs <= cw or qs == qw:
        return None
    xs = np.linspace(0.0, 1.0, grid)
    qual = np.array([_envelope(points, cw + x * (cs - cw), qw) for x in xs])
    auc = float(np.trapezoid(qual, xs))
    return (auc - qw) / (qs - qw)


def aiq(points: Sequence[Point], max_cost: float) -> float:
    """RouterBench's AIQ: area under the non-decreasing convex hull, flat to ``max_cost``, / ``max_cost``."""
    hull = non_decreasing_hull(points)
    if not hull or max_cost <= 0:
        return 0.0
    if hull[-1][0] < max_cost:
        hull.append((max_cost, hull[-1][1]))
    xs = np.array([p[0] for p in hull])
    ys = np.array([p[1] for p in hull])
    return float(np.trapezoid(ys, xs)) / max_cost


def cost_to_match(points: Sequence[Point], quality: float, cost: float) -> float | None:
    """Cheapest operating point reaching ``quality``, as a fraction of ``cost``; None if never."""
    ok = [c for c, q in points if q >= quality - 1e-12]
    return min(ok) / cost if ok else None


def quality_at_cost(points: Sequence[Point], budget: float) -> float | None:
    """Best quality among operating points costing at most ``budget``; None if none is that cheap."""
    ok = [q for c, q in points if c <= budget + 1e-15]
    return max(ok) if ok else None


# ------------------------------------------------------------------------------------------------ replay


@dataclass
class _Replay:
    data: RoutingData
    cols: dict[str, int]
    cost: FloatArray

    def caller(self, i: int, spent: list[float]) -> Any:
        async def call(model: str, messages: list[dict[str, Any]] | None = None) -> Answer:
            if messages is not None:
                raise RuntimeError("judge calls cannot be replayed from recorded outputs")
            j = self.cols[model]
            texts = self.data.texts
            text = texts[i][j] if texts is not None else None
            c = float(self.cost[i, j])
            spent.append(c)
            return Answer(model=model, text=text or "", cost_usd=c, latency_s=0.0, payload=(i, j))

        return call


async def _run_point(
    strategy: Strategy, rep: _Replay, min_quality: float | None
) -> tuple[FloatArray, FloatArray, int]:
    """Per-prompt cost and quality of one operating point, and how many prompts the cascade answered."""
    data = rep.data
    n = len(data.prompts)
    costs = np.zeros(n)
    grades = np.zeros(n)
    cheap_accepted = 0
    for i, prompt in enumerate(data.prompts):
        spent: list[float] = []
        call = rep.caller(i, spent)
        dec = await strategy.route([{"role": "user", "content": prompt}], min_quality, call)
        ans = dec.answer if dec.answer is not None else await call(dec.model)
        if dec.answer is not None:
            cheap_accepted += 1
        grades[i] = float(data.quality[i, rep.cols[ans.model]])
        costs[i] = sum(spent)
    return costs, grades, cheap_accepted


def bootstrap_intervals(
    costs: FloatArray,
    grades: FloatArray,
    best_cost: FloatArray,
    best_grade: FloatArray,
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """95 % percentile-bootstrap intervals (prompts resampled) of the headline metrics.

    ``costs``/``grades``: (points, prompts) per-prompt figures of every operating point; ``best_*``: the
    best single model's per prompt (its identity stays fixed). Answers "is a goal missed by more than the
    noise of a few hundred test prompts?".
    """
    n = costs.shape[1]
    w = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    q = w @ grades.T / n  # (resamples, points)
    c = w @ costs.T / n
    bq = w @ best_grade / n
    bc = w @ best_cost / n

    def q_at(frac: float) -> FloatArray:
        out: FloatArray = np.where(c <= frac * bc[:, None] + 1e-15, q, -np.inf).max(axis=1) / bq
        return out

    match = np.where(q >= bq[:, None] - 1e-12, c, np.inf).min(axis=1) / bc

    def interval(v: FloatArray) -> list[float] | None:
        v = v[np.isfinite(v)]
        return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v.size else None

    return {
        "resamples": resamples,
        "quality_at_10pct_cost": interval(q_at(0.1)),
        "quality_at_30pct_cost": interval(q_at(0.3)),
        "cost_to_match_best": interval(match),
        "share_of_resamples_matching_best": float(np.isfinite(match).mean()),
    }


def _curve(
    model: RouterModel,
    base: AutoRouteConfig,
    rep: _Replay,
    cache: RouterContext | None,
    per_prompt: list[tuple[FloatArray, FloatArray]],
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    shared: dict[str, FloatArray] = {}
    sweeps: list[tuple[str, float, AutoRouteConfig, float | None]] = []
    if base.strategy == "predictive":
        for t in TARGETS:
            sweeps.append(("target", t, base, t))
        for lam in LAMBDAS[:-1]:
            sweeps.append(("lambda", float(lam), base.model_copy(update={"lambda_": float(lam)}), None))
    else:
        for lam in LAMBDAS:
            sweeps.append(("lambda", float(lam), base.model_copy(update={"lambda_": float(lam)}), None))
        for t in TARGETS[20:]:
            sweeps.append(("target", t, base, t))
    for knob, value, cfg, mq in sweeps:
        strat = build_strategy(cfg, model, cache_predictions=True)
        ctx = getattr(strat, "ctx", None)
        if isinstance(ctx, RouterContext):
            ctx._cache = shared
        costs, grades, accepted = asyncio.run(_run_point(strat, rep, mq))
        per_prompt.append((costs, grades))
        out.append(
            {
                knob: value,
                "cost": float(costs.mean()),
                "quality": float(grades.mean()),
                "answered_by_cascade": accepted,
            }
        )
    return out


def _metrics(points: list[Point], best: Point, weak: Point, max_cost: float) -> dict[str, Any]:
    q10 = quality_at_cost(points, 0.1 * best[0])
    return {
        "cost_to_match_best": cost_to_match(points, best[1], best[0]),
        "quality_at_10pct_cost": None if q10 is None else q10 / best[1],
        "quality_at_10pct_cost_abs": q10,
        "quality_at_30pct_cost": (lambda v: None if v is None else v / best[1])(
            quality_at_cost(points, 0.3 * best[0])
        ),
        "apgr": apgr(points, weak, best),
        "aiq": aiq(points, max_cost),
    }


def evaluate(
    data_dir: str | Path,
    model_file_or_train: str | Path | bool = True,
    strategy_cfgs: Sequence[AutoRouteConfig] | None = None,
    *,
    subsample: int | None = None,
    candidates: Sequence[str] | None = None,
    primary: str = "hybrid",
    seed: int = 0,
    train_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on ``train`` ids (or load ``model_file_or_train``), replay ``test`` ids, return the report.

    ``strategy_cfgs`` defaults to one config per strategy (predictive, cascade, hybrid) over all
    candidates; the top-level metrics are those of the ``primary`` strategy (each strategy's own are under
    ``strategies``). ``subsample`` evaluates on a random subset of that many test prompts (for CI).
    """
    t0 = time.monotonic()
    data = load_routing_data(data_dir)
    train = data.part("train")
    test = data.part("test")
    if subsample is not None and subsample < len(test.prompts):
        rows = np.sort(np.random.default_rng(seed).choice(len(test.prompts), subsample, replace=False))
        test = test.subset(rows.tolist())
    if isinstance(model_file_or_train, str | Path) and not isinstance(model_file_or_train, bool):
        model = RouterModel.load(model_file_or_train)
        trained = False
    else:
        model = train_router(train, candidates=candidates, **(train_kwargs or {}))
        trained = True
    t_train = time.monotonic() - t0
    names = list(candidates) if candidates else [m for m in model.models if m in test.complete_models()]
    test = test.restrict_models(names)
    cost = test.cost
    rep = _Replay(test, {m: j for j, m in enumerate(names)}, cost)

    q_single = test.quality.mean(axis=0)
    c_single = cost.mean(axis=0)
    b = int(np.argmax(q_single))
    w = int(np.argmin(c_single))
    best: Point = (float(c_single[b]), float(q_single[b]))
    weak: Point = (float(c_single[w]), float(q_single[w]))
    singles = [
        {"model": m, "quality": float(q_single[j]), "cost_per_prompt": float(c_single[j])}
        for j, m in enumerate(names)
    ]
    single_pts: list[Point] = [(float(c_single[j]), float(q_single[j])) for j in range(len(names))]
    oracle_q = test.quality.max(axis=1)
    # oracle cost: cheapest model reaching the per-prompt best grade
    masked = np.where(test.quality >= oracle_q[:, None] - 1e-12, cost, np.inf)
    oracle_c = masked.min(axis=1)

    cfgs = (
        list(strategy_cfgs)
        if strategy_cfgs
        else [
            AutoRouteConfig(strategy=s, candidates=list(names), cascade=CascadeConfig())
            for s in ("predictive", "cascade", "hybrid")
        ]
    )
    curves: dict[str, list[dict[str, Any]]] = {}
    intervals: dict[str, dict[str, Any]] = {}
    for cfg in cfgs:
        t1 = time.monotonic()
        per_prompt: list[tuple[FloatArray, FloatArray]] = []
        curves[cfg.strategy] = _curve(model, cfg, rep, None, per_prompt)
        intervals[cfg.strategy] = bootstrap_intervals(
            np.array([c for c, _ in per_prompt]),
            np.array([g for _, g in per_prompt]),
            cost[:, b],
            test.quality[:, b],
        )
        log.info(
            "%s: %d operating points in %.1fs", cfg.strategy, len(curves[cfg.strategy]), time.monotonic() - t1
        )
    all_pts = [p for cv in curves.values() for p in ((pt["cost"], pt["quality"]) for pt in cv)]
    max_cost = max([c for c, _ in single_pts] + [c for c, _ in all_pts])
    per_strategy = {}
    for s, cv in curves.items():
        pts = [(pt["cost"], pt["quality"]) for pt in cv]
        per_strategy[s] = {**_metrics(pts, best, weak, max_cost), "intervals_95": intervals[s], "curve": cv}
    main = primary if primary in per_strategy else next(iter(per_strategy))
    report: dict[str, Any] = {
        "data": str(data_dir),
        "train_prompts": len(train.prompts),
        "test_prompts": len(test.prompts),
        "candidates": names,
        "model_trained_here": trained,
        "model_info": model.info,
        "best_single": {"model": names[b], "quality": best[1], "cost_per_prompt": best[0]},
        "weakest_single": {"model": names[w], "quality": weak[1], "cost_per_prompt": weak[0]},
        "oracle_quality": float(oracle_q.mean()),
        "oracle_cost_per_prompt": float(oracle_c.mean()),
        "primary_strategy": main,
        **{k: v for k, v in per_strategy[main].items() if k != "curve"},
        "router_curve": per_strategy[main]["curve"],
        "strategies": per_strategy,
        "single_models": singles,
        "static_frontier": [
            {"model": names[single_pts.index(p)], "cost_per_prompt": p[0], "quality": p[1]}
            for p in pareto_front(single_pts)
        ],
        "static_aiq": aiq(single_pts, max_cost),
        "quality_at_10pct_cost_note": "fraction of the best single model's quality (absolute: *_abs)",
        "seconds": {"train": round(t_train, 1), "total": round(time.monotonic() - t0, 1)},
    }
    return report


def plot(result: dict[str, Any], path: str | Path) -> None:
    """Write the cost–quality plot of an ``evaluate`` report to a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=110)
    singles = result["single_models"]
    ax.scatter(
        [s["cost_per_prompt"] for s in singles],
        [s["quality"] for s in singles],
        s=18,
        color="grey",
        label="single models",
        zorder=2,
    )
    for s in singles:
        ax.annotate(
            s["model"],
            (s["cost_per_prompt"], s["quality"]),
            fontsize=6,
            color="dimgrey",
            xytext=(3, -3),
            textcoords="offset points",
        )
    front = result["static_frontier"]
    ax.plot(
        [f["cost_per_prompt"] for f in front],
        [f["quality"] for f in front],
        color="grey",
        linestyle="--",
        linewidth=1,
        label="static frontier (single models)",
    )
    colors = {"predictive": "tab:blue", "cascade": "tab:orange", "hybrid": "tab:green"}
    for name, st in result["strategies"].items():
        pts = pareto_front([(p["cost"], p["quality"]) for p in st["curve"]])
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker=".",
            color=colors.get(name),
            label=f"{name} (APGR {st['apgr']:.2f}, AIQ {st['aiq']:.3f})" if st["apgr"] is not None else name,
        )
    best = result["best_single"]
    ax.axhline(best["quality"], color="tab:red", linewidth=0.8, linestyle=":")
    ax.axvline(best["cost_per_prompt"] * 0.3, color="tab:red", linewidth=0.6, linestyle=":")
    ax.axvline(best["cost_per_prompt"] * 0.1, color="tab:purple", linewidth=0.6, linestyle=":")
    ax.axhline(
        result["oracle_quality"],
        color="black",
        linewidth=0.8,
        linestyle="-.",
        label=f"oracle {result['oracle_quality']:.3f}",
    )
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per prompt, USD (log)")
    ax.set_ylabel("mean quality")
    ax.set_title(
        f"{result['test_prompts']} test prompts — best single {best['model']} "
        f"({best['quality']:.3f} at ${best['cost_per_prompt']:.5f}); dotted: 10 % / 30 % of its cost"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def load_report_data(data_dir: str | Path) -> RoutingData:
    """Convenience for notebooks: the folder's data."""
    return load_routing_data(data_dir)
