"""Rates with 95 % bootstrap confidence intervals, the Wilson interval used for early stopping, and
percentiles.

Bootstrap: the requests are resampled with replacement (B = 2,000 by default, seeded) and each
statistic is recomputed on every resample; the interval is the 2.5th-97.5th percentile of those
(percentile bootstrap). Requests are the unit, so paired quantities (a candidate's cost relative to the
baseline's on the same requests) keep their pairing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where used: `llmswitch serve` never needs it
    import numpy as np
    import numpy.typing as npt


__all__ = ["Estimate", "bootstrap_outcomes", "bootstrap_ratio", "percentile", "wilson"]

B_DEFAULT = 2000
OUTCOME_VALUE = {"win": 1, "tie": 0, "loss": -1}


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def to_json(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _indices(n: int, b: int, seed: int) -> npt.NDArray[np.int64]:
    import numpy as np

    return np.random.default_rng(seed).integers(0, n, size=(b, n))


def _interval(samples: npt.NDArray[np.float64], value: float, level: float) -> Estimate:
    import numpy as np

    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    # Percentile intervals of a degenerate sample (all wins) collapse on the value; keep value inside.
    return Estimate(value, float(min(low, value)), float(max(high, value)))


def bootstrap_outcomes(
    outcomes: Sequence[str], *, b: int = B_DEFAULT, seed: int = 0, level: float = 0.95
) -> dict[str, Estimate] | None:
    """Win, tie, loss and not-worse (win + tie) rates with bootstrap intervals; None if empty."""
    import numpy as np

    if not outcomes:
        return None
    values = np.array([OUTCOME_VALUE[o] for o in outcomes], dtype=np.int8)
    resampled = values[_indices(len(values), b, seed)]
    out = {}
    for name, mask, boot in (
        ("win", values == 1, (resampled == 1).mean(axis=1)),
        ("tie", values == 0, (resampled == 0).mean(axis=1)),
        ("loss", values == -1, (resampled == -1).mean(axis=1)),
        ("not_worse", values >= 0, (resampled >= 0).mean(axis=1)),
    ):
        out[name] = _interval(boot.astype(np.float64), float(mask.mean()), level)
    return out


def bootstrap_ratio(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    b: int = B_DEFAULT,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate | None:
    """sum(numerator) / sum(denominator) over paired requests (e.g. baseline cost / candidate cost)."""
    import numpy as np

    if not numerator or len(numerator) != len(denominator):
        return None
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    if den.sum() <= 0:
        return None
    idx = _indices(len(num), b, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    boot = boot[np.isfinite(boot)]
    value = float(num.sum() / den.sum())
    return _interval(boot, value, level) if boot.size else Estimate(value, value, value)


def wilson(successes: int, n: int, alpha: float) -> tuple[float, float]:
    """Two-sided Wilson score interval for a binomial proportion at level 1 - alpha."""
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - spread), min(1.0, centre + spread)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation), None if there are no values."""
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None


def estimate_json(e: Estimate | None) -> dict[str, Any] | None:
    return e.to_json() if e is not None else None
