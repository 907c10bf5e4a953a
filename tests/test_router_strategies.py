"""Decision logic of the predictive, cascade and hybrid strategies, with stub callers."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmswitch.routing.auto import (
    Answer,
    AutoRouteConfig,
    CascadeConfig,
    RouteDecision,
    RouterModel,
    benchmark_predictive,
    build_strategy,
    trace_header,
)
from llmswitch.routing.auto.features import LexicalFeaturizer
from llmswitch.routing.auto.predictor import QualityPredictor
from llmswitch.routing.auto.train import train_from_records, train_router

PRICES = {"tiny": (0.1, 0.1), "small": (0.2, 0.2), "mid": (1.0, 1.0), "big": (10.0, 10.0)}
MSGS = [{"role": "user", "content": "What is 6 times 7?"}]


def const_model(probs: dict[str, float], order: list[str] | None = None) -> RouterModel:
    """A router model whose predictor returns ``probs`` for every prompt."""
    fz = LexicalFeaturizer(hash_dim=0)
    names = list(probs)
    p = np.array([probs[n] for n in names])
    pred = QualityPredictor(
        models=names,
        featurizer=fz,
        mean=np.zeros(fz.dim),
        scale=np.ones(fz.dim),
        W=np.zeros((fz.dim, len(names))),
        b=np.log(p / (1 - p)),
        out_tokens=np.full(len(names), 100.0),
        prior_quality=p,
    )
    return RouterModel(
        predictor=pred, prices=dict(PRICES), strong="big", order=order or ["tiny", "small"], skip_margin=0.3
    )


class StubCaller:
    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, model: str, messages: list[dict[str, Any]] | None = None) -> Answer:
        self.calls.append(model)
        if self.answers.get(model) == "FAIL":
            raise ConnectionError("upstream down")
        return Answer(
            model=model, text=self.answers.get(model, ""), cost_usd=PRICES[model][1] * 1e-4, latency_s=0.01
        )


def route(
    cfg: AutoRouteConfig, model: RouterModel, caller: StubCaller, mq: float | None = None
) -> RouteDecision:
    return asyncio.run(build_strategy(cfg, model).route(MSGS, mq, caller))


PROBS = {"tiny": 0.5, "small": 0.6, "mid": 0.8, "big": 0.95}


def test_predictive_cheapest_meeting_target() -> None:
    model = const_model(PROBS)
    cfg = AutoRouteConfig(strategy="predictive", target=0.7)
    caller = StubCaller({})
    d = route(cfg, model, caller)
    assert d.model == "mid" and d.answer is None and caller.calls == []
    assert d.trace["predicted"] == {"tiny": 0.5, "small": 0.6, "mid": 0.8, "big": 0.95}
    # the request's min quality overrides the route's target
    assert route(cfg, model, caller, mq=0.55).model == "small"
    # nothing meets the target: escalate to the strongest predicted
    d = route(cfg, model, caller, mq=0.99)
    assert d.model == "big" and "strongest" in str(d.trace["cause"])
    # candidates restrict the choice
    cfg2 = AutoRouteConfig(strategy="predictive", target=0.7, candidates=["tiny", "big"])
    assert route(cfg2, model, caller).model == "big"


def test_predictive_lambda_tradeoff() -> None:
    model = const_model(PROBS)
    # costs per prompt ≈ 1e-4 x price: λ = 0 picks the best, a huge λ the cheapest
    assert (
        route(AutoRouteConfig(strategy="predictive", **{"lambda": 0.0}), model, StubCaller({})).model == "big"
    )
    assert (
        route(AutoRouteConfig(strategy="predictive", **{"lambda": 1e7}), model, StubCaller({})).model
        == "tiny"
    )


def test_price_override_changes_choice() -> None:
    model = const_model(PROBS)
    cfg = AutoRouteConfig(
        strategy="predictive",
        target=0.55,
        candidates=[{"name": "tiny"}, {"name": "small", "input_price": 50, "output_price": 50}, "mid", "big"],
    )
    assert route(cfg, model, StubCaller({})).model == "mid"


def test_config_is_strict() -> None:
    with pytest.raises(ValueError):
        AutoRouteConfig.model_validate({"strategy": "cascade", "typo": 1})
    with pytest.raises(ValueError):
        AutoRouteConfig.model_validate({"candidates": ["a", "a"]})
    cfg = AutoRouteConfig.model_validate(
        {"strategy": "hybrid", "lambda": 5, "cascade": {"check": "agreement"}}
    )
    assert cfg.lambda_ == 5 and cfg.cascade.check == "agreement"
    with pytest.raises(ValueError):
        build_strategy(AutoRouteConfig(candidates=["nope"]), const_model(PROBS))


def _agree_cfg(**kw: Any) -> AutoRouteConfig:
    return AutoRouteConfig(strategy="cascade", cascade=CascadeConfig(check="agreement", **kw))


def test_cascade_accepts_on_agreement() -> None:
    caller = StubCaller({"tiny": '{"answer": "42"}', "small": "Reasoning...\nAnswer: 42.0", "big": "42"})
    d = route(_agree_cfg(), const_model(PROBS), caller)
    assert caller.calls == ["tiny", "small"]
    assert d.answer is not None and d.model == d.answer.model == "small"  # higher predicted quality
    assert str(d.trace["cause"]).startswith("accepted")
    calls = d.trace["calls"]
    assert isinstance(calls, list) and [c["accepted"] for c in calls] == [False, True]
    assert "calls=tiny,small" in trace_header(d.trace)


def test_cascade_escalates_on_disagreement() -> None:
    caller = StubCaller({"tiny": '{"answer": "41"}', "small": '{"answer": "42"}'})
    d = route(_agree_cfg(), const_model(PROBS), caller)
    assert d.model == "big" and d.answer is None
    assert caller.calls == ["tiny", "small"]  # the caller, not the strategy, calls the strong model
    assert str(d.trace["cause"]).startswith("escalated")


def test_cascade_failed_cheap_call_escalates() -> None:
    caller = StubCaller({"tiny": "FAIL", "small": '{"answer": "42"}'})
    d = route(_agree_cfg(first_batch=2), const_model(PROBS), caller)
    assert d.model == "big" and d.answer is None
    assert sorted(caller.calls) == ["small", "tiny"]


def test_cascade_three_voters() -> None:
    model = const_model(PROBS, order=["tiny", "small", "mid"])
    caller = StubCaller({"tiny": '{"answer": "1"}', "small": '{"answer": "2"}', "mid": '{"answer": "2"}'})
    d = route(_agree_cfg(), model, caller)
    assert caller.calls == ["tiny", "small", "mid"] and d.model == "mid" and d.answer is not None


def test_cascade_judge() -> None:
    model = const_model(PROBS, order=["tiny"])
    cfg = AutoRouteConfig(strategy="cascade", cascade=CascadeConfig(check="judge", judge_model="mid"))
    yes = StubCaller({"tiny": '{"answer": "42"}', "mid": "YES"})
    d = route(cfg, model, yes)
    assert d.model == "tiny" and d.answer is not None and yes.calls == ["tiny", "mid"]
    no = StubCaller({"tiny": '{"answer": "42"}', "mid": "NO, it is 41"})
    assert route(cfg, model, no).model == "big"


def test_hybrid_goes_straight_to_strong_or_cascades() -> None:
    caller = StubCaller({"tiny": '{"answer": "42"}', "small": '{"answer": "42"}'})
    hard = const_model({"tiny": 0.1, "small": 0.2, "mid": 0.4, "big": 0.9})  # margin 0.7 > 0.3
    d = route(AutoRouteConfig(strategy="hybrid", cascade=CascadeConfig(check="agreement")), hard, caller)
    assert d.model == "big" and d.answer is None and caller.calls == []
    assert "better than any cheap start" in str(d.trace["cause"])
    easy = const_model(PROBS)  # margin 0.35 > 0.3 -> still straight; raise the margin in the route
    cfg = AutoRouteConfig(strategy="hybrid", skip_margin=0.5, cascade=CascadeConfig(check="agreement"))
    d = route(cfg, easy, caller)
    assert d.answer is not None and caller.calls == ["tiny", "small"]


def test_learned_cascade_roundtrip(tmp_path: Path) -> None:
    from llmswitch.routing.auto.data import load_routing_data
    from tests.test_router_data import write_synthetic

    d = load_routing_data(write_synthetic(tmp_path / "syn", n=160))
    model = train_router(d.part("train"), folds=3, pool_size=2, max_cascade=2)
    assert model.strong == "big" and model.order and model.acceptance
    path = tmp_path / "router.npz"
    model.save(path)
    loaded = RouterModel.load(path)
    assert loaded.order == model.order and len(loaded.acceptance) == len(model.acceptance)
    test = d.part("test")
    i = next(k for k, t in enumerate(test.prompts) if "apples" in t)
    texts = test.texts
    assert texts is not None
    answers = {m: texts[i][j] or "" for j, m in enumerate(test.models) if m in PRICES or m == "big"}
    caller = StubCaller(answers)
    cfg = AutoRouteConfig(strategy="cascade", **{"lambda": 1e6})
    dec = asyncio.run(
        build_strategy(cfg, loaded).route([{"role": "user", "content": test.prompts[i]}], None, caller)
    )
    assert dec.trace["strategy"] == "cascade" and dec.trace.get("estimates")
    json.dumps(dec.trace)  # the trace is JSON-serialisable (ledger / header)


def test_train_from_records() -> None:
    recs = []
    for i in range(40):
        hard = i % 2 == 1
        msgs = [{"role": "user", "content": ("prove the theorem " * 5 if hard else "add 2 and 3") + str(i)}]
        recs.append((msgs, "tiny", 0.0 if hard else 1.0, 1e-5))
        recs.append((msgs, "big", 1.0, 1e-3))
    model = train_from_records(recs)
    assert set(model.models) == {"tiny", "big"} and model.strong == "big"
    p = model.predictor.predict(["add 2 and 3", "prove the theorem " * 5])
    assert p[0, model.predictor.index("tiny")] > p[1, model.predictor.index("tiny")]
    strat = build_strategy(AutoRouteConfig(strategy="predictive", target=0.6), model)
    ctx = strat.ctx  # type: ignore[attr-defined]
    assert math.isclose(float(ctx.est_costs("x")[ctx.candidates.index("big")]), 1e-3, rel_tol=1e-6)


def test_predictive_decision_overhead_benchmark() -> None:
    """Prints p50/p99 decision overhead for ~27 candidates (timing is printed, not asserted)."""
    names = [f"m{k}" for k in range(27)]
    probs = {n: 0.3 + 0.02 * k for k, n in enumerate(names)}
    model = const_model({**probs, "big": 0.95})
    model.prices = {n: (0.1 * (k + 1), 0.2 * (k + 1)) for k, n in enumerate(names)} | {"big": (10.0, 10.0)}
    prompts = [f"Question {i}: what is {i} * {i + 1}? " * (1 + i % 20) for i in range(300)]
    res = benchmark_predictive(AutoRouteConfig(strategy="predictive", target=0.7), model, prompts)
    assert res["n"] == 300 and res["candidates"] == 28


def test_shipped_default_model_serves() -> None:
    from llmswitch.routing.auto import load_router_model

    model = load_router_model()
    assert model.strong in model.models and model.order and model.acceptance
    prices = {m: (1.0, 1.0) for m in model.models}

    async def call(name: str, messages: list[dict[str, Any]] | None = None) -> Answer:
        return Answer(
            model=name,
            text='{"reasoning": "r", "answer": "42"}',
            cost_usd=prices[name][0] * 1e-4,
            latency_s=0,
        )

    for strategy in ("predictive", "cascade", "hybrid"):
        cfg = AutoRouteConfig(strategy=strategy, target=0.6)  # type: ignore[arg-type]
        d = asyncio.run(build_strategy(cfg, model).route(MSGS, None, call))
        assert d.model in model.models
        json.dumps(d.trace)


def test_predictive_fast_path_decides_like_the_numpy_path() -> None:
    """Serving scores candidates in plain Python; the evaluation (and other featurizers) use numpy."""
    import gzip

    from llmswitch.routing.auto import load_router_model
    from llmswitch.routing.auto.strategies import PredictiveStrategy, RouterContext

    model = load_router_model()
    prompts = [
        "What is 6 times 7?",
        "def f(x):\n    return [i * 2 for i in x]\nassert f([1, 2]) == ??",
        r"Find $\frac{1}{2} + \frac{1}{3}$ as a fraction, then give 10% of it.",
        "Ünïcode prose — ça va? Ответ: 42. " * 50,
        "x" * 40_000,
    ]
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "routing" / "prompts.jsonl.gz"
    if data.exists():
        with gzip.open(data, "rt") as fh:
            prompts += [json.loads(line)["prompt"] for _, line in zip(range(300), fh, strict=False)]
    for cfg in (
        AutoRouteConfig(strategy="predictive", target=0.8, candidates=model.models[:8]),
        AutoRouteConfig(strategy="predictive", **{"lambda": 300.0}, candidates=model.models[-8:]),
        AutoRouteConfig(strategy="predictive", target=0.7, candidates=model.models[:5]),
    ):
        fast = PredictiveStrategy(RouterContext(cfg, model))
        slow = PredictiveStrategy(RouterContext(cfg, model))
        slow.ctx._scorers = None  # the numpy path
        assert fast.ctx._scorers is not None
        for text in prompts:
            for target in (None, 0.55, 0.9):
                m1, t1 = fast.decide(text, target)
                m2, t2 = slow.decide(text, target)
                assert m1 == m2, (text[:60], target)
                assert t1["cause"] == t2["cause"]
                p1, p2 = t1["predicted"], t2["predicted"]
                assert isinstance(p1, dict) and isinstance(p2, dict)
                assert all(abs(p1[k] - p2[k]) <= 0.0011 for k in p2)
