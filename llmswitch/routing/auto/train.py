"""Training: the quality predictor, the cascade plan and the acceptance model, from outcome data.

Everything is fitted on the rows it is given (``router train`` and ``evaluate`` pass the ``train`` ids
only). Choices that need held-out figures — the cascade calling order, ``continue_factor`` and the
hybrid ``skip_margin`` — are made by K-fold cross-validation *inside* those rows: predictions used to
fit the acceptance model are cross-fitted, and each plan is scored on folds it was not fitted on.

The fast simulation here mirrors :class:`~llmswitch.routing.auto.strategies.CascadeStrategy` decision
for decision (the same :func:`~llmswitch.routing.auto.model.cascade_features`), so the plan chosen in
training is the one the served strategy executes; the evaluation itself replays through the real
strategies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.routing.auto.answers import canonical_answer
from llmswitch.routing.auto.data import RoutingData, load_routing_data
from llmswitch.routing.auto.features import Featurizer, LexicalFeaturizer, featurizer_from_spec, prompt_text
from llmswitch.routing.auto.model import AcceptanceModel, Call, RouterModel, cascade_features
from llmswitch.routing.auto.predictor import QualityPredictor

FloatArray = npt.NDArray[np.float64]
log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FEATURIZER",
    "ReplayTable",
    "cross_fit_predictions",
    "train_from_records",
    "train_router",
]

DEFAULT_FEATURIZER: dict[str, Any] = {"kind": "lexical", "hash_dim": 0}
DEFAULT_L2 = {"lexical": 1e-2, "minilm": 0.3, "combined": 1.0}
LAMBDAS = np.concatenate([[0.0], np.logspace(0, 5, 41), [1e9]])


def _l2_for(spec: dict[str, Any]) -> float:
    if spec.get("kind") == "lexical" and int(spec.get("hash_dim", 0)) > 0:
        return 1.0
    return DEFAULT_L2.get(str(spec.get("kind")), 1e-2)


def _folds(n: int, k: int, seed: int = 0) -> npt.NDArray[np.int64]:
    out: npt.NDArray[np.int64] = np.random.default_rng(seed).permutation(n) % k
    return out


def cross_fit_predictions(
    x: FloatArray, quality: FloatArray, folds: npt.NDArray[np.int64], l2: float
) -> FloatArray:
    """Out-of-fold P(good) for every row, fitting the predictor on the other folds."""
    from llmswitch.routing.auto.predictor import _sigmoid, fit_logistic

    p = np.zeros(quality.shape)
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        mu = x[tr].mean(axis=0)
        sd = x[tr].std(axis=0)
        sd[sd < 1e-6] = 1.0
        W, b = fit_logistic((x[tr] - mu) / sd, quality[tr], l2=l2)
        p[te] = _sigmoid(((x[te] - mu) / sd) @ W + b)
    return p


@dataclass
class ReplayTable:
    """Everything the cascade simulation needs about some prompts × models."""

    P: FloatArray  # (n, m) predicted P(good) (cross-fitted in training)
    Q: FloatArray  # (n, m) recorded quality
    C: FloatArray  # (n, m) recorded cost, USD
    est: FloatArray  # (n, m) cost estimate the strategies use (prompt chars/4, mean output tokens)
    canon: list[list[str | None]]  # (n, m) canonical final answers
    chars: npt.NDArray[np.int64]  # (n, m) output text length

    def steps(
        self, order: Sequence[int], strong: int, width: int
    ) -> tuple[list[FloatArray], npt.NDArray[np.int64], FloatArray, npt.NDArray[np.bool_]]:
        """Per step: features (n, f); accepted column, cumulative cost, answer found, each (L, n)."""
        n, L = self.Q.shape[0], len(order)
        feats: list[list[list[float]]] = [[] for _ in range(L)]
        acc = np.zeros((L, n), dtype=np.int64)
        found = np.zeros((L, n), dtype=bool)
        cum = np.cumsum(self.C[:, list(order)], axis=1).T
        for i in range(n):
            calls: list[Call] = []
            for t, j in enumerate(order):
                calls.append(Call(j, self.canon[i][j], int(self.chars[i, j])))
                f, a = cascade_features(calls, self.P[i], strong, width)
                feats[t].append(f)
                acc[t, i] = calls[a].model
                found[t, i] = calls[a].answer is not None
        return [np.array(f) for f in feats], acc, cum, found


def _labels(tab: ReplayTable, acc: npt.NDArray[np.int64], strong: int) -> FloatArray:
    rows = np.arange(tab.Q.shape[0])
    return np.stack([tab.Q[rows, acc], tab.Q[:, strong]], axis=1)


def cv_acceptance(
    tab: ReplayTable, order: Sequence[int], strong: int, folds: npt.NDArray[np.int64]
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64], FloatArray, npt.NDArray[np.bool_]]:
    """Per step, out of fold: P(accepted answer good), P(strong good); accepted column, cum. cost, found."""
    feats, acc, cum, found = tab.steps(order, strong, len(order))
    pa = np.zeros((len(order), tab.Q.shape[0]))
    ps = np.zeros_like(pa)
    for t in range(len(order)):
        y = _labels(tab, acc[t], strong)
        for f in np.unique(folds):
            tr, te = folds != f, folds == f
            pr = AcceptanceModel.fit(feats[t][tr], y[tr]).predict(feats[t][te])
            pa[t, te], ps[t, te] = pr[:, 0], pr[:, 1]
    return pa, ps, acc, cum, found


def _cv_gains(
    tab: ReplayTable, order: Sequence[int], strong: int, folds: npt.NDArray[np.int64]
) -> tuple[FloatArray, npt.NDArray[np.int64], FloatArray, npt.NDArray[np.bool_]]:
    pa, ps, acc, cum, found = cv_acceptance(tab, order, strong, folds)
    return ps - pa, acc, cum, found


def simulate(
    tab: ReplayTable,
    order: Sequence[int],
    strong: int,
    gains: FloatArray,
    acc: npt.NDArray[np.int64],
    cum: FloatArray,
    found: npt.NDArray[np.bool_],
    lambdas: Iterable[float],
    continue_factor: float,
    skip_margin: float | None = None,
) -> list[tuple[float, float]]:
    """(mean cost, mean quality) of the λ-mode cascade (or hybrid with ``skip_margin``) for each λ."""
    n = tab.Q.shape[0]
    rows = np.arange(n)
    L = len(order)
    skip = np.zeros(n, dtype=bool)
    if skip_margin is not None:
        skip = tab.P[:, strong] - tab.P[:, list(order)].max(axis=1) > skip_margin
    out = []
    for lam in lambdas:
        thr = lam * tab.est[:, strong]
        q = np.zeros(n)
        c = np.zeros(n)
        done = skip.copy()
        for t in range(L):
            limit = thr if t == L - 1 else thr * continue_factor
            ok = (~done) & (gains[t] <= limit) & found[t]
            q[ok] = tab.Q[rows[ok], acc[t, ok]]
            c[ok] = cum[t, ok]
            done |= ok
        esc = ~done
        q[esc] = tab.Q[esc, strong]
        c[esc] = np.where(skip[esc], 0.0, cum[L - 1, esc]) + tab.C[esc, strong]
        out.append((float(c.mean()), float(q.mean())))
    return out


def _objective(curve: list[tuple[float, float]], ref_cost: float) -> float:
    """Train-side planning score: best quality reachable at ≤ 10 %, 20 % and 30 % of the strong cost."""
    score = 0.0
    for frac in (0.1, 0.2, 0.3):
        score += max((q for c, q in curve if c <= frac * ref_cost), default=0.0)
    return score


def _canon(text: str | None) -> str | None:
    return None if text is None else canonical_answer(text)


def build_table(
    data: RoutingData, P: FloatArray, models: Sequence[str], out_tokens: FloatArray
) -> ReplayTable:
    cols = [data.models.index(m) for m in models]
    texts = data.texts or [[None] * len(data.models) for _ in data.prompts]
    canon = [[_canon(row[c]) for c in cols] for row in texts]
    chars = np.array([[len(row[c] or "") for c in cols] for row in texts], dtype=np.int64)
    pin = np.array([data.prices[m][0] for m in models])
    pout = np.array([data.prices[m][1] for m in models])
    in_tok = np.array(
        [max(1.0, len(prompt_text([{"role": "user", "content": t}])) / 4.0) for t in data.prompts]
    )
    est = (in_tok[:, None] * pin[None, :] + out_tokens[None, :] * pout[None, :]) / 1e6
    return ReplayTable(P=P, Q=data.quality[:, cols], C=data.cost[:, cols], est=est, canon=canon, chars=chars)


def plan_cascade(
    tab: ReplayTable,
    strong: int,
    pool: Sequence[int],
    folds: npt.NDArray[np.int64],
    *,
    max_len: int = 4,
    deadline: float | None = None,
) -> tuple[list[int], float, list[dict[str, Any]]]:
    """Greedy forward choice of the cheap calling order by the cross-validated planning score."""
    ref = float(tab.C[:, strong].mean())
    order: list[int] = []
    best_score = -1.0
    history: list[dict[str, Any]] = []
    for _ in range(max_len):
        step_best: tuple[float, int] | None = None
        for j in pool:
            if j in order:
                continue
            if deadline is not None and time.monotonic() > deadline:
                break
            cand = [*order, j]
            g, acc, cum, found = _cv_gains(tab, cand, strong, folds)
            curve = simulate(tab, cand, strong, g, acc, cum, found, LAMBDAS, 0.25)
            s = _objective(curve, ref)
            if step_best is None or s > step_best[0]:
                step_best = (s, j)
        if step_best is None or step_best[0] <= best_score + 1e-4:
            break
        best_score = step_best[0]
        order.append(step_best[1])
        history.append({"order_len": len(order), "added": step_best[1], "cv_score": round(best_score, 4)})
    return order, best_score, history


def train_router(
    data: RoutingData,
    *,
    candidates: Sequence[str] | None = None,
    featurizer: Featurizer | dict[str, Any] | None = None,
    folds: int = 5,
    max_cascade: int = 5,
    pool_size: int = 10,
    time_budget_s: float = 240.0,
    seed: int = 0,
) -> RouterModel:
    """Fit a :class:`RouterModel` on all rows of ``data`` (pass the train part only).

    ``candidates`` defaults to the models with an outcome for every prompt. The strong model is the
    candidate with the best mean quality; the cascade pool is the ``pool_size`` cheap candidates
    (mean cost ≤ 20 % of the strong model's) with the best quality per cost.
    """
    t0 = time.monotonic()
    if featurizer is None:
        featurizer = dict(DEFAULT_FEATURIZER)
    fz = featurizer_from_spec(featurizer) if isinstance(featurizer, dict) else featurizer
    models = list(candidates) if candidates else data.complete_models()
    if not models:
        raise ValueError("no model has outcomes for every prompt; pass candidates explicitly")
    data = data.restrict_models(models)
    x = fz.transform(data.prompts)
    l2 = _l2_for(fz.spec())
    pred = QualityPredictor.fit(fz, data.prompts, models, data.quality, data.output_tokens, l2=l2, features=x)
    fold = _folds(len(data.prompts), folds, seed)
    P = cross_fit_predictions(x, data.quality, fold, l2)
    strong = int(np.argmax(np.nanmean(data.quality, axis=0)))
    mean_cost = np.nanmean(data.cost, axis=0)
    info: dict[str, Any] = {
        "prompts": len(data.prompts),
        "models": len(models),
        "featurizer": fz.spec(),
        "l2": l2,
        "folds": folds,
    }
    model = RouterModel(predictor=pred, prices=dict(data.prices), strong=models[strong], order=[], info=info)
    if data.texts is None:
        log.info("no outputs in the data: no cascade plan (cascade falls back to agreement checks)")
        model.order = [
            m for m in sorted(models, key=lambda m: mean_cost[models.index(m)]) if m != models[strong]
        ][:2]
        return model
    tab = build_table(data, P, models, pred.out_tokens)
    cheap = [j for j in range(len(models)) if j != strong and mean_cost[j] <= 0.2 * mean_cost[strong]]
    q = np.nanmean(data.quality, axis=0)
    # quality per log-cost: favours models that are both good and cheap
    cheap.sort(key=lambda j: -(q[j] - 0.05 * np.log(mean_cost[j] / mean_cost[strong])))
    pool = cheap[:pool_size]
    deadline = t0 + time_budget_s
    order, score, history = plan_cascade(tab, strong, pool, fold, max_len=max_cascade, deadline=deadline)
    if not order:
        order = pool[:2]
    g, acc, cum, found = _cv_gains(tab, order, strong, fold)
    ref = float(tab.C[:, strong].mean())
    best_k, best_s = 0.25, -1.0
    for k in (0.05, 0.1, 0.25, 0.5, 1.0):
        s = _objective(simulate(tab, order, strong, g, acc, cum, found, LAMBDAS, k), ref)
        if s > best_s + 1e-4:
            best_k, best_s = k, s
    best_m, best_ms = 1.0, best_s
    for m in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5):
        s = _objective(simulate(tab, order, strong, g, acc, cum, found, LAMBDAS, best_k, m), ref)
        if s > best_ms + 1e-4:
            best_m, best_ms = m, s
    feats, acc_all, _cum, _found = tab.steps(order, strong, len(order))
    model.acceptance = [
        AcceptanceModel.fit(feats[t], _labels(tab, acc_all[t], strong)) for t in range(len(order))
    ]
    model.order = [models[j] for j in order]
    model.continue_factor = best_k
    model.skip_margin = best_m
    info.update(
        cascade_order=model.order,
        cascade_cv_score=round(score, 4),
        plan_history=[{**h, "added": models[h["added"]]} for h in history],
        continue_factor=best_k,
        skip_margin=best_m,
        hybrid_cv_score=round(best_ms, 4),
        train_seconds=round(time.monotonic() - t0, 1),
    )
    return model


def train_from_dir(data_dir: str | Path, out: str | Path, **kw: Any) -> RouterModel:
    """``router train --data DIR --out FILE``: fit on DIR's split.json ``train`` ids (all rows if none)."""
    data = load_routing_data(data_dir)
    part = data.part("train") if "train" in data.split else data
    model = train_router(part, **kw)
    model.save(out)
    return model


def train_from_records(
    records: Iterable[tuple[list[dict[str, Any]], str, float, float]],
    out: str | Path | None = None,
    *,
    featurizer: Featurizer | dict[str, Any] | None = None,
    min_per_model: int = 5,
) -> RouterModel:
    """Fit a predictor-only router model from ledger records ``(messages, model, score in [0, 1], cost USD)``.

    Prompts are grouped by their text; unobserved (prompt, model) pairs are simply missing. Without output
    texts there is no cascade plan: cascades use agreement checks over the cheapest candidates. Records
    carry no token counts, so each model's mean recorded cost is its cost estimate (the route's prices,
    when given, are then not used for it).
    """
    prompts: dict[str, int] = {}
    rows: list[tuple[int, str, float, float]] = []
    for messages, name, score, cost in records:
        text = prompt_text(messages)
        i = prompts.setdefault(text, len(prompts))
        rows.append((i, name, float(score), float(cost)))
    names = sorted({m for _, m, _, _ in rows})
    counts = {m: sum(1 for r in rows if r[1] == m) for m in names}
    names = [m for m in names if counts[m] >= min_per_model]
    if not names:
        raise ValueError(f"no model has at least {min_per_model} scored records")
    col = {m: j for j, m in enumerate(names)}
    qual = np.full((len(prompts), len(names)), np.nan)
    qsum = np.zeros_like(qual)
    qn = np.zeros_like(qual)
    cost_sum = np.zeros(len(names))
    for i, m, s, c in rows:
        j = col.get(m)
        if j is None:
            continue
        qsum[i, j] += min(1.0, max(0.0, s))
        qn[i, j] += 1
        cost_sum[j] += c
    seen = qn > 0
    qual[seen] = qsum[seen] / qn[seen]
    mean_cost = cost_sum / np.maximum(qn.sum(axis=0), 1)
    fz_spec = featurizer if featurizer is not None else dict(DEFAULT_FEATURIZER)
    fz = featurizer_from_spec(fz_spec) if isinstance(fz_spec, dict) else fz_spec
    texts = list(prompts)
    # cost estimate = mean recorded cost: expressed as 1e6 "output tokens" of that many USD per Mtok
    out_tokens = np.where(seen, 1.0, np.nan) * mean_cost[None, :] * 1e6
    pred = QualityPredictor.fit(fz, texts, names, qual, out_tokens, l2=_l2_for(fz.spec()))
    prices = {m: (0.0, 1.0) for m in names}
    strong = names[int(np.argmax(pred.prior_quality))]
    order = [m for m in sorted(names, key=lambda m: mean_cost[col[m]]) if m != strong][:2]
    router = RouterModel(
        predictor=pred,
        prices=prices,
        strong=strong,
        order=order,
        info={"source": "records", "prompts": len(texts), "records": len(rows), "models": len(names)},
    )
    if out is not None:
        router.save(out)
    return router


def default_featurizer() -> LexicalFeaturizer:
    return LexicalFeaturizer(hash_dim=0)
