"""Per-candidate quality predictor: from the prompt alone, P(good answer) for every known model.

One multi-output logistic regression (a weight column per model) on standardised prompt features, fitted
with full-batch Adam + L2 in numpy; inference is one featurisation plus one (d × m) mat-vec. Per-model
mean output tokens (for cost estimates) travel in the same object. Serialised to a single ``.npz`` file
(arrays + one JSON metadata string), loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.routing.auto.features import Featurizer, LexicalFeaturizer, featurizer_from_spec

FloatArray = npt.NDArray[np.float64]

__all__ = ["QualityPredictor", "fit_logistic"]

FORMAT = "llmswitch-router/1"


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return out


def fit_logistic(
    x: FloatArray,
    y: FloatArray,
    *,
    l2: float = 1e-2,
    steps: int = 400,
    lr: float = 0.05,
    sample_weight: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Independent logistic regressions for every column of ``y`` (values in [0, 1], NaN = unknown).

    Minimises mean cross-entropy + ``l2``/2 · ||W||² per column with full-batch Adam. Returns (W, b).
    """
    d = x.shape[1]
    m = y.shape[1]
    known = ~np.isnan(y)
    yy = np.where(known, y, 0.0)
    w8 = known.astype(np.float64)
    if sample_weight is not None:
        w8 = w8 * sample_weight[:, None]
    denom = np.maximum(w8.sum(axis=0), 1e-9)
    rate = np.clip((yy * w8).sum(axis=0) / denom, 1e-3, 1 - 1e-3)
    W = np.zeros((d, m))
    b = np.log(rate / (1 - rate))
    mw, vw = np.zeros_like(W), np.zeros_like(W)
    mb, vb = np.zeros_like(b), np.zeros_like(b)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        p = _sigmoid(x @ W + b)
        g = (p - yy) * w8 / denom
        gW = x.T @ g + l2 * W
        gb = g.sum(axis=0)
        mw = beta1 * mw + (1 - beta1) * gW
        vw = beta2 * vw + (1 - beta2) * gW * gW
        mb = beta1 * mb + (1 - beta1) * gb
        vb = beta2 * vb + (1 - beta2) * gb * gb
        c1, c2 = 1 - beta1**t, 1 - beta2**t
        W -= lr * (mw / c1) / (np.sqrt(vw / c2) + eps)
        b -= lr * (mb / c1) / (np.sqrt(vb / c2) + eps)
    return W, b


@dataclass
class QualityPredictor:
    """P(good answer | prompt) for each of ``models``; plus cost-estimation statistics per model."""

    models: list[str]
    featurizer: Featurizer
    mean: FloatArray  # feature standardisation
    scale: FloatArray
    W: FloatArray  # (d, m)
    b: FloatArray  # (m,)
    out_tokens: FloatArray  # (m,) mean output tokens seen in training
    prior_quality: FloatArray  # (m,) mean quality seen in training
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the cascade plan and acceptance model

    def __post_init__(self) -> None:
        # standardisation folded into the weights: one mat-vec per routed request
        self._w = self.W / self.scale[:, None]
        self._b = self.b - (self.mean / self.scale) @ self.W

    @classmethod
    def fit(
        cls,
        featurizer: Featurizer,
        texts: Sequence[str],
        models: Sequence[str],
        quality: FloatArray,
        out_tokens: FloatArray,
        *,
        l2: float = 1e-2,
        steps: int = 400,
        features: FloatArray | None = None,
    ) -> QualityPredictor:
        """Fit on prompts ``texts`` and their (n, m) ``quality`` (NaN = not observed)."""
        x = featurizer.transform(texts) if features is None else features
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-6] = 1.0
        W, b = fit_logistic((x - mean) / scale, quality, l2=l2, steps=steps)
        return cls(
            models=list(models),
            featurizer=featurizer,
            mean=mean,
            scale=scale,
            W=W,
            b=b,
            out_tokens=np.nan_to_num(np.nanmean(np.where(np.isnan(quality), np.nan, out_tokens), axis=0)),
            prior_quality=np.nan_to_num(np.nanmean(quality, axis=0)),
        )

    def index(self, model: str) -> int:
        return self.models.index(model)

    def linear(self, col: int) -> tuple[list[float], float]:
        """Model ``col``'s weights on raw features and its bias (standardisation folded in), as floats."""
        return self._w[:, col].tolist(), float(self._b[col])

    def predict_features(self, x: FloatArray) -> FloatArray:
        """(n, m) probabilities from raw features (n, d)."""
        return _sigmoid(x @ self._w + self._b)

    def predict(self, texts: Sequence[str]) -> FloatArray:
        return self.predict_features(self.featurizer.transform(texts))

    def predict_one(self, text: str) -> FloatArray:
        """(m,) probabilities for one prompt."""
        fz = self.featurizer
        x = fz.one(text) if isinstance(fz, LexicalFeaturizer) else fz.transform([text])[0]
        out: FloatArray = _sigmoid(x @ self._w + self._b)
        return out

    # ----------------------------------------------------------------------------------- serialisation

    def save(self, path: str | Path) -> None:
        meta = {
            "format": FORMAT,
            "models": self.models,
            "featurizer": self.featurizer.spec(),
            "extra": self.extra,
        }
        with open(path, "wb") as fh:
            np.savez_compressed(
                fh,
                meta=np.array(json.dumps(meta)),
                mean=self.mean,
                scale=self.scale,
                W=self.W,
                b=self.b,
                out_tokens=self.out_tokens,
                prior_quality=self.prior_quality,
            )

    @classmethod
    def load(cls, path: str | Path) -> QualityPredictor:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT:
                raise ValueError(f"{path}: not a router model file (format {meta.get('format')!r})")
            fz = meta["featurizer"]
            specs = [fz, *fz.get("parts", [])]
            if any(
                p.get("kind") == "lexical" and p.get("version", 1) != LexicalFeaturizer.VERSION for p in specs
            ):
                raise ValueError(
                    f"{path}: trained on older lexical features; retrain it with `llmswitch router train`"
                )
            return cls(
                models=list(meta["models"]),
                featurizer=featurizer_from_spec(fz),
                mean=z["mean"],
                scale=z["scale"],
                W=z["W"],
                b=z["b"],
                out_tokens=z["out_tokens"],
                prior_quality=z["prior_quality"],
                extra=dict(meta.get("extra") or {}),
            )
