"""Evaluation metrics on hand-computable curves, and the replay evaluation on synthetic and real data."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from llmswitch.routing.auto.ceiling import policies
from llmswitch.routing.auto.cli import register
from llmswitch.routing.auto.evaluate import (
    aiq,
    apgr,
    bootstrap_intervals,
    cost_to_match,
    evaluate,
    non_decreasing_hull,
    pareto_front,
    plot,
    quality_at_cost,
)
from tests.harness import routing_data_dir
from tests.test_router_data import write_synthetic

REAL_DATA = Path(routing_data_dir())


def test_pareto_and_hull() -> None:
    pts = [(1.0, 0.5), (2.0, 0.4), (2.0, 0.7), (3.0, 0.6), (4.0, 0.9)]
    assert pareto_front(pts) == [(1.0, 0.5), (2.0, 0.7), (4.0, 0.9)]
    # (2, 0.7) lies below the chord (1, 0.5)-(4, 0.9)? chord at 2 = 0.633 -> no, it stays
    assert non_decreasing_hull(pts) == [(1.0, 0.5), (2.0, 0.7), (4.0, 0.9)]
    assert non_decreasing_hull([(0.0, 0.0), (0.5, 0.2), (1.0, 1.0)]) == [(0.0, 0.0), (1.0, 1.0)]
    assert non_decreasing_hull([(0.0, 0.5), (1.0, 0.4)]) == [(0.0, 0.5)]


def test_aiq_toy_curves() -> None:
    assert math.isclose(aiq([(0.0, 0.0), (1.0, 1.0)], 1.0), 0.5)
    assert math.isclose(aiq([(0.0, 0.0), (0.5, 0.2), (1.0, 1.0)], 1.0), 0.5)  # hull skips (0.5, 0.2)
    assert math.isclose(aiq([(0.0, 0.5), (1.0, 0.4)], 1.0), 0.5)  # non-decreasing: flat at 0.5
    # flat extension to the largest cost, area left of the first point is 0 (RouterBench's code)
    assert math.isclose(aiq([(1.0, 0.8)], 2.0), 0.4)


def test_apgr_toy_curves() -> None:
    weak, strong = (1.0, 0.5), (3.0, 0.9)
    assert math.isclose(apgr([weak, strong], weak, strong) or 0, 0.5, abs_tol=1e-6)  # straight line
    assert math.isclose(
        apgr([(1.0, 0.9)], weak, strong) or 0, 1.0, abs_tol=1e-6
    )  # strong quality at weak cost
    assert math.isclose(apgr([(3.0, 0.9)], weak, strong) or 0, 0.0, abs_tol=1e-3)  # only at strong cost
    assert math.isclose(apgr([(2.0, 0.9)], weak, strong) or 0, 0.5, abs_tol=1e-3)  # a step at half way
    assert apgr([weak], weak, (1.0, 0.9)) is None


def test_cost_to_match_and_quality_at_cost() -> None:
    pts = [(1.0, 0.8), (2.0, 0.9), (3.0, 0.85)]
    assert cost_to_match(pts, 0.85, 4.0) == 0.5
    assert cost_to_match(pts, 0.95, 4.0) is None
    assert quality_at_cost(pts, 1.5) == 0.8
    assert quality_at_cost(pts, 0.5) is None


def _check_report(r: dict[str, object]) -> None:
    for key in (
        "best_single",
        "oracle_quality",
        "cost_to_match_best",
        "quality_at_10pct_cost",
        "apgr",
        "aiq",
        "router_curve",
        "single_models",
        "static_frontier",
        "strategies",
    ):
        assert key in r, key
    best = r["best_single"]
    assert isinstance(best, dict) and {"model", "quality", "cost_per_prompt"} <= set(best)
    assert float(r["oracle_quality"]) >= best["quality"]  # type: ignore[arg-type]
    singles = r["single_models"]
    assert isinstance(singles, list)
    cheapest = min(singles, key=lambda s: s["cost_per_prompt"])
    strategies = r["strategies"]
    assert isinstance(strategies, dict) and set(strategies) == {"predictive", "cascade", "hybrid"}
    for st in strategies.values():
        curve = st["curve"]
        assert curve and all({"cost", "quality"} <= set(p) for p in curve)
        # the router's curve never falls below the cheapest model
        assert max(p["quality"] for p in curve) >= cheapest["quality"]
        ci = st["intervals_95"]
        assert 0.0 <= ci["share_of_resamples_matching_best"] <= 1.0
        if st["quality_at_10pct_cost"] is not None and ci["quality_at_10pct_cost"] is not None:
            lo, hi = ci["quality_at_10pct_cost"]
            assert lo <= hi
    json.dumps(r)


def test_evaluate_synthetic(tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "syn", n=160)
    r = evaluate(folder, True, train_kwargs={"folds": 3, "pool_size": 2, "max_cascade": 2})
    _check_report(r)
    assert r["best_single"]["model"] == "big"  # type: ignore[index]
    # the planted structure is learnable: the router reaches big's quality below big's cost (A: tiny, B: big)
    assert r["cost_to_match_best"] is not None and float(r["cost_to_match_best"]) < 0.9  # type: ignore[arg-type]
    png = tmp_path / "curve.png"
    plot(r, png)
    assert png.stat().st_size > 10_000


@pytest.mark.skipif(not (REAL_DATA / "outcomes.jsonl.gz").exists(), reason="routing data not available")
def test_evaluate_real_data_subsample(tmp_path: Path) -> None:
    cands = [
        "gemma-2-2b-it",
        "gemini-1.5-flash",
        "deepseek-v2.5-0908",
        "gpt-4o-mini-2024-07-18",
        "Llama-3.1-70B-Instruct",
        "claude-3-5-sonnet-20241022",
    ]
    r = evaluate(
        REAL_DATA,
        True,
        subsample=100,
        candidates=cands,
        train_kwargs={"folds": 3, "pool_size": 3, "max_cascade": 2},
    )
    _check_report(r)
    assert r["test_prompts"] == 100
    assert r["best_single"]["model"] in cands  # type: ignore[index]


def test_cli_register_parses() -> None:
    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command"))
    a = p.parse_args(["router", "eval", "--data", "d", "--json", "--plot", "x.png", "--subsample", "50"])
    assert a.subsample == 50 and a.json and a.plot == "x.png" and callable(a.func)
    a = p.parse_args(["router", "train", "--data", "d", "--out", "m.npz"])
    assert a.out == "m.npz"


def test_ceiling_bounds_the_served_rule(tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "syn", n=160)
    pts, best, caption = policies(str(folder), folds=3, order_names=["tiny", "mid"])
    assert "tiny -> mid" in caption
    served, tuned, perfect = pts.values()
    pc, pq = np.array(perfect).T
    assert np.all(np.diff(pc) >= 0) and np.all(np.diff(pq) >= 0)
    for c, q in served + tuned:
        # knowing which answers are right bounds any rule over the same calls (the perfect curve is
        # concave between its points: interpolate)
        assert c < pc[0] - 1e-12 or q <= np.interp(c, pc, pq) + 1e-9
    # on this planted data agreement of the cheap pair means correctness: the perfect check matches
    # the strong model at a fraction of its cost
    match = cost_to_match(perfect, best[1], best[0])
    assert match is not None and match < 0.9


def test_bootstrap_intervals_cover_the_estimate_and_shrink_with_more_prompts() -> None:
    rng = np.random.default_rng(1)

    def widths(n: int) -> tuple[float, list[float]]:
        best_grade = (rng.random(n) < 0.8).astype(float)
        best_cost = np.full(n, 10.0)
        # one operating point: 10 % of the cost, right where the best model is right 95 % of the time
        grades = (best_grade * (rng.random(n) < 0.95))[None, :]
        costs = np.full((1, n), 1.0)
        ci = bootstrap_intervals(costs, grades, best_cost, best_grade, resamples=400)
        lo, hi = ci["quality_at_10pct_cost"]
        estimate = grades.mean() / best_grade.mean()
        assert lo <= estimate <= hi
        assert ci["share_of_resamples_matching_best"] < 0.05  # strictly worse than the best: rarely matches
        return hi - lo, ci["quality_at_30pct_cost"]

    small, _ = widths(200)
    large, _ = widths(5000)
    assert large < small / 2
