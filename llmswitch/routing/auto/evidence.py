"""Which prompt features predict per-model quality best? Cross-validation inside the ``train`` ids only.

``python -m llmswitch.routing.auto.evidence --data DIR`` prints a Markdown table: for each featurizer and
L2 strength, the K-fold mean log-loss and mean per-model ROC AUC of the per-model logistic regressions
(the predictor ``router train`` fits), the quality the predictive strategy reaches at 10 % / 30 % of the
best model's cost when routing each held-out fold with its out-of-fold predictions, and the featurizer's
single-prompt latency (p50 / p99, ms).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.routing.auto.data import RoutingData, load_routing_data
from llmswitch.routing.auto.features import Featurizer, featurizer_from_spec
from llmswitch.routing.auto.train import _folds, cross_fit_predictions

FloatArray = npt.NDArray[np.float64]

SPECS: list[tuple[str, dict[str, Any], Sequence[float]]] = [
    ("lexical (shape, 25-d)", {"kind": "lexical", "hash_dim": 0}, (1e-3, 1e-2, 1e-1)),
    ("lexical + hashed n-grams (1049-d)", {"kind": "lexical", "hash_dim": 1024}, (0.1, 0.3, 1.0, 3.0)),
    ("MiniLM int8, 256 tokens (384-d)", {"kind": "minilm", "max_tokens": 256}, (0.1, 0.3, 1.0)),
    ("MiniLM int8, 48 tokens (384-d)", {"kind": "minilm", "max_tokens": 48}, (0.1, 0.3, 1.0)),
]


def _auc(y: FloatArray, p: FloatArray) -> float:
    order = np.argsort(p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    n1 = float(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _predictive_quality(data: RoutingData, p: FloatArray, frac: float) -> float:
    """Best mean quality of 'argmax p − λ·cost' (true mean costs as estimate) within frac × best cost."""
    q, c = data.quality, data.cost
    best = int(np.argmax(q.mean(axis=0)))
    budget = frac * c[:, best].mean()
    mean_cost = c.mean(axis=0)
    out = 0.0
    for lam in np.concatenate([[0.0], np.logspace(0, 6, 60)]):
        pick = np.argmax(p - lam * mean_cost[None, :], axis=1)
        rows = np.arange(len(pick))
        if c[rows, pick].mean() <= budget:
            out = max(out, float(q[rows, pick].mean()))
    return out


def _latency(fz: Featurizer, texts: Sequence[str], n: int = 200) -> tuple[float, float]:
    fz.transform([texts[0]])
    ts = []
    for t in texts[:n]:
        t0 = time.perf_counter()
        fz.transform([t])
        ts.append(time.perf_counter() - t0)
    arr = np.array(ts) * 1e3
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def run(data_dir: str, folds: int = 5) -> str:
    data = load_routing_data(data_dir, outputs=False)
    train = data.part("train") if "train" in data.split else data
    train = train.restrict_models(train.complete_models())
    y = train.quality
    fold = _folds(len(train.prompts), folds, 0)
    base = np.clip(y.mean(axis=0), 1e-6, 1 - 1e-6)
    base_ll = float(-np.mean(y * np.log(base) + (1 - y) * np.log(1 - base)))
    lines = [
        f"{len(train.prompts)} train prompts x {len(train.models)} models, {folds}-fold CV inside train.",
        f"Constant per-model base rate: log-loss {base_ll:.4f}, AUC 0.5.",
        "",
        "| features | L2 | log-loss | mean AUC | predictive q @10% cost | q @30% cost "
        "| latency p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, spec, l2s in SPECS:
        fz = featurizer_from_spec(spec)
        try:
            t0 = time.perf_counter()
            x = fz.transform(train.prompts)
            feat_s = time.perf_counter() - t0
        except RuntimeError as e:
            lines.append(f"| {name} | – | unavailable: {e} | | | | |")
            continue
        p50, p99 = _latency(fz, train.prompts)
        for l2 in l2s:
            p = cross_fit_predictions(x, y, fold, l2)
            ll = float(-np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9)))
            auc = float(np.nanmean([_auc(y[:, j], p[:, j]) for j in range(y.shape[1])]))
            q10 = _predictive_quality(train, p, 0.1)
            q30 = _predictive_quality(train, p, 0.3)
            lines.append(
                f"| {name} | {l2:g} | {ll:.4f} | {auc:.4f} | {q10:.4f} | {q30:.4f} | {p50:.2f} / {p99:.2f} |"
            )
        lines.append(f"<!-- {name}: featurising all train prompts took {feat_s:.1f} s -->")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    print(run(args.data, args.folds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
