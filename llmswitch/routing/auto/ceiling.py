"""How far can a cascade over these cheap calls go? Bounds measured inside the ``train`` ids only.

``python -m llmswitch.routing.auto.ceiling --data DIR`` prints, for the shipped cascade's calling order,
the cost–quality figures of three policies over the *same* calls (5-fold cross-fitted predictions):

* ``served rule`` — the λ rule the gateway runs (``strategies.CascadeStrategy``), out of fold;
* ``tuned thresholds`` — a richer family (one acceptance threshold per step, then an escalation margin)
  whose best point per budget is picked *in sample*: optimistic, an upper estimate for anything built
  on the same features (agreement, answer shape, lengths, prompt-level predictions);
* ``perfect check`` — acceptance that knows which answers are right (accept the first correct cheap
  answer, escalate only when the strong model is right and the cheap ones are not): what a flawless
  verifier or judge could reach with these calls.

The gap between the second and third rows is what better *signals* (verifiers, judges) would buy; the
first two rows show how much is left to gain from the acceptance model itself.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from llmswitch.routing.auto.data import RoutingData, load_routing_data
from llmswitch.routing.auto.evaluate import Point, cost_to_match, quality_at_cost
from llmswitch.routing.auto.features import LexicalFeaturizer
from llmswitch.routing.auto.model import load_router_model
from llmswitch.routing.auto.train import (
    LAMBDAS,
    ReplayTable,
    _folds,
    build_table,
    cross_fit_predictions,
    cv_acceptance,
    simulate,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_TAUS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99, 1.01)
_MARGINS = (-1.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 2.0)


def _tuned_thresholds(
    tab: ReplayTable, strong: int, pa: FloatArray, ps: FloatArray, acc: IntArray, cum: FloatArray
) -> list[Point]:
    n, steps = tab.Q.shape[0], pa.shape[0]
    rows = np.arange(n)
    pts: list[Point] = []
    for taus in itertools.product(_TAUS, repeat=steps - 1):
        for margin in _MARGINS:
            done = np.zeros(n, dtype=bool)
            q = np.zeros(n)
            c = np.zeros(n)
            for t in range(steps):
                last = t == steps - 1
                ok = ~done & ((ps[t] - pa[t] <= margin) if last else (pa[t] >= taus[t]))
                q[ok] = tab.Q[rows[ok], acc[t, ok]]
                c[ok] = cum[t, ok]
                done |= ok
            q[~done] = tab.Q[~done, strong]
            c[~done] = cum[steps - 1, ~done] + tab.C[~done, strong]
            pts.append((float(c.mean()), float(q.mean())))
    return pts


def _perfect_check(tab: ReplayTable, strong: int, acc: IntArray, cum: FloatArray) -> list[Point]:
    """The budgeted optimum when correctness is known: per prompt, accept after step t or escalate after
    the first step; upgrades applied greedily by quality gained per dollar (the LP-relaxation order, so
    every point is feasible and the curve through them bounds any policy over these calls)."""
    n = tab.Q.shape[0]
    rows = np.arange(n)
    opt_q = np.vstack([tab.Q[rows, acc[t]] for t in range(acc.shape[0])] + [tab.Q[:, strong]])
    opt_c = np.vstack([cum[t] for t in range(acc.shape[0])] + [cum[0] + tab.C[:, strong]])
    upgrades: list[tuple[float, float, float]] = []  # (gain per dollar, extra cost, gain)
    for i in range(n):
        # the prompt's options on their upper concave hull, from the cheapest (the first call) up
        c0, q0 = float(opt_c[0, i]), float(opt_q[0, i])
        rest = sorted((float(c), float(q)) for c, q in zip(opt_c[1:, i], opt_q[1:, i], strict=True))
        while True:
            steps = [((q - q0) / (c - c0), c, q) for c, q in rest if c > c0 and q > q0]
            if not steps:
                break
            ratio, c, q = max(steps)
            upgrades.append((ratio, c - c0, q - q0))
            c0, q0 = c, q
    cost, quality = float(opt_c[0].sum()), float(opt_q[0].sum())
    pts: list[Point] = [(cost / n, quality / n)]
    for _ratio, dc, dq in sorted(upgrades, reverse=True):
        cost += dc
        quality += dq
        pts.append((cost / n, quality / n))
    return pts


def _row(name: str, pts: Sequence[Point], best: Point) -> str:
    cells = []
    for frac in (0.1, 0.2, 0.3):
        q = quality_at_cost(pts, frac * best[0])
        cells.append("–" if q is None else f"{q / best[1]:.1%}")
    match = cost_to_match(pts, best[1], best[0])
    cells.append("never" if match is None else f"{match:.0%}")
    return f"| {name} | " + " | ".join(cells) + " |"


def policies(
    data_dir: str, folds: int = 5, order_names: Sequence[str] | None = None
) -> tuple[dict[str, list[Point]], Point, str]:
    """Operating points of the three policies on the train ids, the strong model's point, a caption."""
    data: RoutingData = load_routing_data(data_dir)
    train = data.part("train")
    train = train.restrict_models(train.complete_models())
    models = train.models
    fz = LexicalFeaturizer(hash_dim=0)
    fold = _folds(len(train.prompts), folds)
    P = cross_fit_predictions(fz.transform(train.prompts), train.quality, fold, 1e-2)
    tab = build_table(train, P, models, np.nanmean(train.output_tokens, axis=0))
    strong = int(np.argmax(train.quality.mean(axis=0)))
    shipped = load_router_model()
    names = list(order_names) if order_names else [m for m in shipped.order if m in models]
    if not names:
        raise ValueError("no cheap calling order: pass --order with models of the data")
    order = [models.index(m) for m in names]
    pa, ps, acc, cum, found = cv_acceptance(tab, order, strong, fold)
    best: Point = (float(tab.C[:, strong].mean()), float(tab.Q[:, strong].mean()))
    pts = {
        "served rule (out of fold)": simulate(
            tab, order, strong, ps - pa, acc, cum, found, LAMBDAS, shipped.continue_factor
        ),
        "tuned thresholds (in sample: optimistic)": _tuned_thresholds(tab, strong, pa, ps, acc, cum),
        "perfect check": _perfect_check(tab, strong, acc, cum),
    }
    caption = (
        f"{len(train.prompts)} train prompts, {folds}-fold; strong {models[strong]} "
        f"(quality {best[1]:.4f}, ${best[0]:.6f}/prompt); cheap calls in order: {' -> '.join(names)}"
    )
    return pts, best, caption


def run(data_dir: str, folds: int = 5, order_names: Sequence[str] | None = None) -> str:
    pts, best, caption = policies(data_dir, folds, order_names)
    head = (
        "| policy over the same calls | quality @10 % cost | @20 % | @30 % | cost to match the strong model |"
    )
    return "\n".join(
        [caption, "", head, "|---|---|---|---|---|", *(_row(k, v, best) for k, v in pts.items())]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--order", nargs="*", help="cheap calling order (default: the shipped model's)")
    args = ap.parse_args(argv)
    print(run(args.data, args.folds, args.order))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
