"""The router model file: quality predictor + cascade plan + learned acceptance, one ``.npz`` file.

Everything except the predictor's arrays is small and travels as JSON in the predictor's metadata.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.routing.auto.predictor import QualityPredictor, _sigmoid, fit_logistic

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "DEFAULT_MODEL_FILE",
    "AcceptanceModel",
    "Call",
    "RouterModel",
    "cascade_features",
    "load_router_model",
    "logit",
]

# trained by `llmswitch router train --data shared/data/routing --out <this file>` (published train ids only)
DEFAULT_MODEL_FILE = Path(__file__).resolve().parent / "assets" / "default-router.npz"


def logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class Call:
    """One cheap answer seen by the cascade: model column in the predictor, canonical answer, text size."""

    model: int
    answer: str | None
    chars: int


def cascade_features(
    calls: Sequence[Call], p: FloatArray, strong: int, width: int
) -> tuple[list[float], int]:
    """Features of the cascade state after ``calls`` (in calling order), and which call would be accepted.

    The accepted answer is the plurality final answer (ties: the group whose best member has the highest
    predicted quality); within it, the member with the highest predicted quality. ``width`` fixes the
    feature length (one "agrees with the plurality" flag per calling position).
    """
    votes: dict[str, list[int]] = {}
    for k, c in enumerate(calls):
        if c.answer is not None:
            votes.setdefault(c.answer, []).append(k)
    if votes:
        top = max(votes, key=lambda a: (len(votes[a]), max(p[calls[k].model] for k in votes[a])))
        group = votes[top]
        acc = max(group, key=lambda k: p[calls[k].model])
        counts = sorted((len(v) for v in votes.values()), reverse=True)
        topn = counts[0]
        second = counts[1] if len(counts) > 1 else 0
        kind = [float(top.startswith("n:")), float(top.startswith("s:")), float(top[:2] not in ("n:", "s:"))]
    else:
        top, group, acc, topn, second, kind = None, [], 0, 0, 0, [0.0, 0.0, 0.0]
    t = len(calls)
    lg_acc = logit(float(p[calls[acc].model])) if calls else 0.0
    lg_strong = logit(float(p[strong]))
    lg_group = float(np.mean([logit(float(p[calls[k].model])) for k in group])) if group else -3.0
    mean_chars = float(np.mean([c.chars for c in calls])) if calls else 0.0
    in_group = [0.0] * width
    for k in group:
        if k < width:
            in_group[k] = 1.0
    share = topn / max(1, t)
    is_int = magnitude = 0.0
    if top is not None and top.startswith("n:"):
        try:
            val = float(top[2:])
            is_int = float(val == int(val))
            magnitude = math.log1p(abs(val))
        except (ValueError, OverflowError):
            pass
    f = [
        float(topn),
        float(second),
        float(len(votes)),
        share,
        lg_acc,
        lg_strong,
        lg_group,
        math.log1p(mean_chars),
        math.log1p(calls[acc].chars) if calls else 0.0,
        *kind,
        *in_group,
        topn * lg_strong,
        topn * kind[0],
        topn * kind[1],
        topn * kind[2],
        share * lg_strong,
        is_int,
        magnitude,
        math.log1p(len(top)) if top is not None else 0.0,
    ]
    return f, acc


@dataclass
class AcceptanceModel:
    """Logistic model of [P(accepted cheap answer is good), P(strong model's answer is good)]."""

    mean: FloatArray
    scale: FloatArray
    W: FloatArray  # (f, 2)
    b: FloatArray  # (2,)

    @classmethod
    def fit(cls, x: FloatArray, y: FloatArray, l2: float = 1e-2) -> AcceptanceModel:
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-6] = 1.0
        W, b = fit_logistic((x - mean) / scale, y, l2=l2, steps=300)
        return cls(mean, scale, W, b)

    def predict(self, x: FloatArray) -> FloatArray:
        return _sigmoid(((x - self.mean) / self.scale) @ self.W + self.b)

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "W": self.W.tolist(),
            "b": self.b.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AcceptanceModel:
        return cls(*(np.asarray(d[k], dtype=np.float64) for k in ("mean", "scale", "W", "b")))


@dataclass
class RouterModel:
    """What ``router train`` writes and the gateway loads."""

    predictor: QualityPredictor
    prices: dict[str, tuple[float, float]]  # USD / Mtok (input, output) seen in training
    strong: str
    order: list[str]  # learned cascade calling order (cheap candidates)
    acceptance: list[AcceptanceModel] = field(default_factory=list)  # one per cascade step
    continue_factor: float = 0.0
    skip_margin: float = 1.0  # hybrid: strong − best cheap predicted quality that skips the cascade
    info: dict[str, Any] = field(default_factory=dict)  # training summary (data, sizes, CV figures)

    @property
    def models(self) -> list[str]:
        return self.predictor.models

    def save(self, path: str | Path) -> None:
        self.predictor.extra = {
            "prices": {m: list(v) for m, v in self.prices.items()},
            "strong": self.strong,
            "order": self.order,
            "acceptance": [a.to_json() for a in self.acceptance],
            "continue_factor": self.continue_factor,
            "skip_margin": self.skip_margin,
            "info": self.info,
        }
        self.predictor.save(path)

    @classmethod
    def load(cls, path: str | Path) -> RouterModel:
        pred = QualityPredictor.load(path)
        e = pred.extra
        return cls(
            predictor=pred,
            prices={m: (float(v[0]), float(v[1])) for m, v in dict(e.get("prices") or {}).items()},
            strong=str(e.get("strong") or pred.models[int(np.argmax(pred.prior_quality))]),
            order=[str(m) for m in e.get("order") or []],
            acceptance=[AcceptanceModel.from_json(a) for a in e.get("acceptance") or []],
            continue_factor=float(e.get("continue_factor", 0.0)),
            skip_margin=float(e.get("skip_margin", 1.0)),
            info=dict(e.get("info") or {}),
        )


def load_router_model(path: str | Path | None = None) -> RouterModel:
    """Load a router model file; ``None`` = the default model shipped with llmswitch."""
    return RouterModel.load(path if path is not None else DEFAULT_MODEL_FILE)
