"""Routing strategies behind one interface, used by the gateway and by the offline evaluation alike.

* ``predictive`` — predicted P(good answer) per candidate from the prompt alone; picks the cheapest
  candidate meeting the quality target, or maximises P(good) − λ·estimated cost; when no candidate meets
  the target it escalates to the candidate with the highest predicted quality.
* ``cascade`` — calls cheap candidates (in the learned or configured order) and accepts an answer when a
  check passes: the learned acceptance model (plurality of normalised final answers + prompt-level
  predictions → P(accepted answer good) and P(strong answer good)), plain agreement of ``min_agree``
  independent answers, or a judge model. Otherwise it escalates to the strong model, which the caller
  then calls itself (so the strong answer can be streamed).
* ``hybrid`` — the predictor decides whether the cascade is worth starting at all; when the strong model
  is predicted to be much better than every cheap candidate it goes straight to it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import operator
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from llmswitch.routing.auto.answers import canonical_answer
from llmswitch.routing.auto.config import AutoRouteConfig
from llmswitch.routing.auto.features import LexicalFeaturizer, prompt_text, shape_features
from llmswitch.routing.auto.model import Call, RouterModel, cascade_features

FloatArray = npt.NDArray[np.float64]
log = logging.getLogger(__name__)

__all__ = [
    "Answer",
    "Caller",
    "CascadeStrategy",
    "HybridStrategy",
    "PredictiveStrategy",
    "RouteDecision",
    "RouterContext",
    "Strategy",
    "build_strategy",
    "trace_header",
]


@dataclass
class Answer:
    """A candidate's complete (non-streamed) answer. ``payload`` is opaque to strategies."""

    model: str
    text: str
    cost_usd: float
    latency_s: float
    payload: Any = None  # not `object`: mypyc cannot build a dataclass field of that type


# ``call(model)`` returns that candidate's answer to the request's own messages. The judge check also
# calls ``call(judge_model, messages)`` with the judging prompt; callers that never serve a judge-checked
# cascade may accept the model name only.
Caller = Callable[..., Awaitable[Answer]]


@dataclass
class RouteDecision:
    """``answer`` is set when the strategy already called ``model``; None = the caller must call it."""

    model: str
    answer: Answer | None
    trace: dict[str, object]


class Strategy(Protocol):
    async def route(
        self, messages: list[dict[str, Any]], min_quality: float | None, call: Caller
    ) -> RouteDecision: ...


def trace_header(trace: dict[str, object]) -> str:
    """Compact one-line summary of a decision trace, for the ``x-llmswitch-route`` response header."""
    parts = [
        f"strategy={trace.get('strategy')}",
        f"model={trace.get('model')}",
        f"cause={trace.get('cause')}",
    ]
    calls = trace.get("calls")
    if isinstance(calls, list) and calls:
        parts.append("calls=" + ",".join(str(c.get("model")) for c in calls if isinstance(c, dict)))
    return ";".join(parts)


class RouterContext:
    """The per-route state built once at start-up: candidates, prices, predictor columns, plan."""

    def __init__(self, cfg: AutoRouteConfig, model: RouterModel, *, cache_predictions: bool = False) -> None:
        self.cfg = cfg
        self.model = model
        pred = model.predictor
        names = cfg.candidate_names() or list(pred.models)
        unknown = [n for n in names if n not in pred.models]
        if unknown:
            raise ValueError(f"candidates unknown to the router model file: {', '.join(unknown)}")
        self.candidates = names
        self.cols = np.array([pred.index(n) for n in names], dtype=np.int64)
        overrides = cfg.price_overrides()
        pin, pout = [], []
        for n in names:
            base = model.prices.get(n)
            o_in, o_out = overrides.get(n, (None, None))
            if base is None and (o_in is None or o_out is None):
                raise ValueError(f"no price for candidate {n!r}: give input_price/output_price in the route")
            pin.append(o_in if o_in is not None else base[0])  # type: ignore[index]
            pout.append(o_out if o_out is not None else base[1])  # type: ignore[index]
        self.price_in = np.array(pin, dtype=np.float64)
        self.price_out = np.array(pout, dtype=np.float64)
        self.out_tokens = pred.out_tokens[self.cols]
        cc = cfg.cascade
        strong = cc.strong or model.strong
        if strong not in names:
            # the trained strong model is not a candidate: use the candidate with the best prior quality
            strong = names[int(np.argmax(pred.prior_quality[self.cols]))]
        self.strong = strong
        order = cc.order if cc.order is not None else [m for m in model.order if m in names and m != strong]
        bad = [m for m in order if m not in names]
        if bad:
            raise ValueError(f"cascade.order names models that are not candidates: {', '.join(bad)}")
        if cc.max_cheap is not None:
            order = order[: cc.max_cheap]
        if not order:  # nothing learned: the cheapest candidates by estimated cost, two of them
            by_cost = sorted((n for n in names if n != strong), key=lambda n: self._unit_cost(n))
            order = by_cost[:2]
        self.order = order
        self.check = cc.check
        learned_ok = bool(model.acceptance) and len(model.acceptance) >= len(order)
        learned_ok = learned_ok and order == model.order[: len(order)] and strong == model.strong
        if self.check == "learned" and not learned_ok:
            log.warning("auto route: no acceptance model for this cascade plan; using agreement checks")
            self.check = "agreement"
        self.continue_factor = cc.continue_factor if cc.continue_factor is not None else model.continue_factor
        self.skip_margin = cfg.skip_margin if cfg.skip_margin is not None else model.skip_margin
        self._cache: dict[str, FloatArray] | None = {} if cache_predictions else None
        # The predictive decision's fast path: shape features straight into per-candidate weights in plain
        # Python floats. A dozen small numpy calls cost more than the arithmetic (~0.2 ms per request with
        # cold caches, against a 0.1 ms budget).
        self._scorers: list[tuple[list[float], float, float, float]] | None = None
        fz = pred.featurizer
        # (beyond ~8 candidates one numpy mat-vec beats the per-candidate Python loop)
        if isinstance(fz, LexicalFeaturizer) and fz.hash_dim == 0 and len(self.cols) <= 8:
            self._scorers = [
                (*pred.linear(c), float(pin_ * 1e-6), float(pout_ * out_ * 1e-6))
                for c, pin_, pout_, out_ in zip(
                    self.cols, self.price_in, self.price_out, self.out_tokens, strict=True
                )
            ]

    def _unit_cost(self, name: str) -> float:
        i = self.candidates.index(name)
        return float(self.price_in[i] * 500 + self.price_out[i] * self.out_tokens[i])

    def col(self, name: str) -> int:
        """The predictor column of candidate ``name``."""
        return int(self.model.predictor.index(name))

    def predict_all(self, text: str) -> FloatArray:
        """P(good) for every model of the predictor (not only candidates)."""
        if self._cache is not None:
            hit = self._cache.get(text)
            if hit is not None:
                return hit
        p = self.model.predictor.predict_one(text)
        if self._cache is not None:
            self._cache[text] = p
        return p

    def score_candidates(self, text: str) -> tuple[list[float], list[float]] | None:
        """(P(good), estimated USD cost) per candidate without numpy; None if the featurizer needs it."""
        if self._scorers is None:
            return None
        x = shape_features(text)
        in_tok = max(1.0, len(text) / 4.0)
        probs = []
        costs = []
        for w, b, unit_in, out_cost in self._scorers:
            z = b + sum(map(operator.mul, x, w))
            probs.append(1.0 / (1.0 + math.exp(-min(max(z, -30.0), 30.0))))
            costs.append(in_tok * unit_in + out_cost)
        return probs, costs

    def est_costs(self, text: str) -> FloatArray:
        """Estimated USD cost per candidate: prompt tokens (≈ chars/4) and mean training output tokens."""
        in_tok = max(1.0, len(text) / 4.0)
        out: FloatArray = (in_tok * self.price_in + self.out_tokens * self.price_out) / 1e6
        return out

    def base_trace(self, strategy: str, p_all: FloatArray, costs: FloatArray) -> dict[str, object]:
        # vectorised rounding: this runs on every routed request (a round() per candidate cost ~40 µs)
        return {
            "strategy": strategy,
            "candidates": list(self.candidates),
            "predicted": dict(zip(self.candidates, np.round(p_all[self.cols], 3).tolist(), strict=True)),
            "est_cost_usd": dict(zip(self.candidates, np.round(costs, 8).tolist(), strict=True)),
            "calls": [],
        }


def _target(cfg: AutoRouteConfig, min_quality: float | None) -> float | None:
    return min_quality if min_quality is not None else cfg.target


class PredictiveStrategy:
    """Cheapest candidate whose predicted quality meets the target, or argmax P(good) − λ·cost."""

    name: ClassVar[str] = "predictive"

    def __init__(self, ctx: RouterContext) -> None:
        self.ctx = ctx

    def decide(self, text: str, min_quality: float | None) -> tuple[str, dict[str, object]]:
        ctx = self.ctx
        scored = ctx.score_candidates(text) if ctx._cache is None else None
        if scored is None:  # numpy: other featurizers, many candidates, the evaluation's cache
            scored = ctx.predict_all(text)[ctx.cols].tolist(), ctx.est_costs(text).tolist()
        p, costs = scored
        target = _target(ctx.cfg, min_quality)
        n = range(len(p))
        if target is not None:
            ok = [i for i in n if p[i] >= target]
            if ok:
                i = min(ok, key=costs.__getitem__)
                cause = f"cheapest with predicted quality >= {target:g}"
            else:
                i = max(n, key=p.__getitem__)
                cause = f"no candidate predicted >= {target:g}: strongest predicted"
        else:
            lam = ctx.cfg.lambda_
            i = max(n, key=lambda j: p[j] - lam * costs[j])
            cause = f"max predicted quality - {lam:g}*cost"
        trace: dict[str, object] = {
            "strategy": self.name,
            "candidates": list(ctx.candidates),
            "predicted": {c: round(v, 3) for c, v in zip(ctx.candidates, p, strict=True)},
            "est_cost_usd": {c: round(v, 8) for c, v in zip(ctx.candidates, costs, strict=True)},
            "calls": [],
            "model": ctx.candidates[i],
            "cause": cause,
            "target": target,
            "lambda": ctx.cfg.lambda_,
        }
        return ctx.candidates[i], trace

    async def route(
        self, messages: list[dict[str, Any]], min_quality: float | None, call: Caller
    ) -> RouteDecision:
        model, trace = self.decide(prompt_text(messages), min_quality)
        return RouteDecision(model=model, answer=None, trace=trace)


_JUDGE_PROMPT = (
    "You are checking another assistant's answer.\n\n## Request\n{question}\n\n## Answer\n{answer}\n\n"
    "Is this answer correct and complete? Reply with one word: YES or NO."
)


class CascadeStrategy:
    """Cheap candidates first; accept when the check passes, otherwise escalate to the strong model."""

    name: ClassVar[str] = "cascade"

    def __init__(self, ctx: RouterContext) -> None:
        self.ctx = ctx

    async def _call(self, call: Caller, model: str, trace_calls: list[dict[str, object]]) -> Answer | None:
        try:
            ans = await call(model)
        except Exception as e:  # a failed cheap call is just a missing answer
            trace_calls.append({"model": model, "error": type(e).__name__, "accepted": False})
            return None
        trace_calls.append(
            {"model": model, "cost_usd": ans.cost_usd, "answer": None, "accepted": False, "role": "cheap"}
        )
        return ans

    async def _judge(
        self, call: Caller, text: str, ans: Answer, trace_calls: list[dict[str, object]]
    ) -> bool:
        judge = self.ctx.cfg.cascade.judge_model
        if judge is None:
            return False
        msgs = [{"role": "user", "content": _JUDGE_PROMPT.format(question=text, answer=ans.text)}]
        try:
            verdict = await call(judge, msgs)
        except Exception as e:
            trace_calls.append({"model": judge, "error": type(e).__name__, "role": "judge"})
            return False
        ok = verdict.text.strip().upper().startswith("YES")
        trace_calls.append({"model": judge, "cost_usd": verdict.cost_usd, "role": "judge", "verdict": ok})
        return ok

    async def run_cascade(
        self,
        text: str,
        min_quality: float | None,
        call: Caller,
        trace: dict[str, object],
        p_all: FloatArray,
        costs: FloatArray,
    ) -> RouteDecision:
        ctx = self.ctx
        order = ctx.order
        strong = ctx.strong
        strong_col = ctx.col(strong)
        target = _target(ctx.cfg, min_quality)
        threshold = ctx.cfg.lambda_ * float(costs[ctx.candidates.index(strong)])
        calls_trace: list[dict[str, object]] = []
        trace["calls"] = calls_trace
        estimates: list[dict[str, object]] = []
        if ctx.check == "learned":
            trace["estimates"] = estimates
        trace["strong"] = strong
        answers: list[Answer] = []
        seen: list[Call] = []
        first = min(len(order), ctx.cfg.cascade.first_batch)
        batch = await asyncio.gather(*(self._call(call, m, calls_trace) for m in order[:first]))
        pending = list(zip(order[:first], batch, strict=True))
        step = 0
        while True:
            for m, ans in pending:
                if ans is None:
                    seen.append(Call(ctx.col(m), None, 0))
                    answers.append(Answer(m, "", 0.0, 0.0))
                else:
                    canon = canonical_answer(ans.text)
                    seen.append(Call(ctx.col(m), canon, len(ans.text)))
                    answers.append(ans)
                    for c in reversed(calls_trace):
                        if c.get("model") == m and c.get("role") == "cheap":
                            c["answer"] = None if canon is None else canon[:60]
                            break
            pending = []
            step = len(seen)
            last = step >= len(order)
            feats, acc = cascade_features(seen, p_all, strong_col, len(ctx.model.order) or len(order))
            accept: bool
            if ctx.check == "learned":
                pa, ps = (float(v) for v in ctx.model.acceptance[step - 1].predict(np.array([feats]))[0])
                gain = ps - pa
                estimates.append({"step": step, "p_accept": round(pa, 3), "p_strong": round(ps, 3)})
                if target is not None:
                    # below target: sample more cheap answers, then escalate unless the strong model is
                    # predicted to be no better
                    accept = pa >= target or (last and gain <= 0)
                    cause = f"p_accept {pa:.3f} vs target {target:g}" if pa >= target else "no gain"
                else:
                    limit = threshold if last else threshold * ctx.continue_factor
                    accept = gain <= limit
                    cause = f"estimated gain {gain:.3f} <= {limit:.3g}"
            elif ctx.check == "agreement":
                accept = int(feats[0]) >= ctx.cfg.cascade.min_agree
                cause = f"{int(feats[0])} answers agree"
            else:
                accept = await self._judge(call, text, answers[acc], calls_trace)
                cause = "judge accepted" if accept else "judge rejected"
            if accept and seen and seen[acc].answer is not None:
                chosen = answers[acc]
                for c in calls_trace:
                    if c.get("model") == chosen.model and c.get("role") == "cheap":
                        c["accepted"] = True
                trace.update(model=chosen.model, cause="accepted: " + cause)
                return RouteDecision(model=chosen.model, answer=chosen, trace=trace)
            if last:
                trace.update(model=strong, cause="escalated: " + cause)
                return RouteDecision(model=strong, answer=None, trace=trace)
            nxt = order[step]
            pending = [(nxt, await self._call(call, nxt, calls_trace))]

    async def route(
        self, messages: list[dict[str, Any]], min_quality: float | None, call: Caller
    ) -> RouteDecision:
        text = prompt_text(messages)
        p_all = self.ctx.predict_all(text)
        costs = self.ctx.est_costs(text)
        trace = self.ctx.base_trace(self.name, p_all, costs)
        return await self.run_cascade(text, min_quality, call, trace, p_all, costs)


class HybridStrategy(CascadeStrategy):
    """Predictor first: straight to the strong model when no cheap start is worth it, else the cascade."""

    name: ClassVar[str] = "hybrid"

    async def route(
        self, messages: list[dict[str, Any]], min_quality: float | None, call: Caller
    ) -> RouteDecision:
        ctx = self.ctx
        text = prompt_text(messages)
        p_all = ctx.predict_all(text)
        costs = ctx.est_costs(text)
        trace = ctx.base_trace(self.name, p_all, costs)
        p_strong = float(p_all[ctx.col(ctx.strong)])
        p_cheap = max((float(p_all[ctx.col(m)]) for m in ctx.order), default=0.0)
        trace["margin"] = round(p_strong - p_cheap, 3)
        if p_strong - p_cheap > ctx.skip_margin:
            trace.update(
                model=ctx.strong,
                strong=ctx.strong,
                cause=f"strong predicted {p_strong - p_cheap:.3f} better than any cheap start",
            )
            return RouteDecision(model=ctx.strong, answer=None, trace=trace)
        return await self.run_cascade(text, min_quality, call, trace, p_all, costs)


def build_strategy(cfg: AutoRouteConfig, model: RouterModel, *, cache_predictions: bool = False) -> Strategy:
    """The strategy ``cfg.strategy`` over ``model`` (a loaded :class:`RouterModel`)."""
    ctx = RouterContext(cfg, model, cache_predictions=cache_predictions)
    if cfg.strategy == "predictive":
        return PredictiveStrategy(ctx)
    if cfg.strategy == "cascade":
        return CascadeStrategy(ctx)
    return HybridStrategy(ctx)


def benchmark_predictive(
    cfg: AutoRouteConfig, model: RouterModel, prompts: Sequence[str], *, repeat: int = 1
) -> dict[str, float]:
    """Time ``PredictiveStrategy.decide`` (featurise + predict + choose) per prompt; prints p50/p99 ms."""
    strat = PredictiveStrategy(RouterContext(cfg.model_copy(update={"strategy": "predictive"}), model))
    strat.decide(prompts[0], None)  # warm-up (lazy loads)
    times: list[float] = []
    for _ in range(repeat):
        for t in prompts:
            t0 = time.perf_counter()
            strat.decide(t, None)
            times.append(time.perf_counter() - t0)
    arr = np.array(times) * 1e3
    res = {
        "n": float(len(arr)),
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "max_ms": float(arr.max()),
        "candidates": float(len(strat.ctx.candidates)),
    }
    print(
        f"predictive decision overhead over {len(arr)} prompts, {len(strat.ctx.candidates)} candidates: "
        f"p50 {res['p50_ms']:.3f} ms, p99 {res['p99_ms']:.3f} ms, max {res['max_ms']:.3f} ms"
    )
    return res
