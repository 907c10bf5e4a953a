"""Sequential early stopping: stop replaying once every candidate is decided against the threshold.

The question per candidate is "is its not-worse rate (win + tie) above the threshold θ?". Replay goes
through the sample in a random order and looks at the data at planned points: every `every` completed
requests (counted on the longest completed prefix of that order, so what is looked at is always a
random subsample), at most `looks` times. At each look, each candidate's not-worse rate gets a Wilson
interval at level 1 - α / (looks × candidates); it is *decided* when the interval lies entirely above
or entirely below θ. Replay stops when every candidate is decided.

Why this is valid: the α is spent evenly over every planned look and candidate (a Bonferroni union
bound), so the probability that any interval at any look misses its true rate is at most α, whatever
the stopping time; the decisions are therefore right with probability ≥ 1 - α overall. It is
conservative (looks are strongly correlated), which costs some extra requests, never validity. The
95 % bootstrap intervals in the report are the usual, unadjusted ones on whatever was replayed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from llmswitch.advisor.stats import wilson

__all__ = ["Decision", "StopRule"]

Decision = Literal["above", "below"] | None


@dataclass(frozen=True, slots=True)
class StopRule:
    threshold: float  # θ: the not-worse rate a candidate must exceed
    sample: int  # N, the planned sample size
    candidates: int
    alpha: float = 0.05
    min_requests: int = 20  # no decision on fewer completed comparisons than this

    @property
    def every(self) -> int:
        """Requests between looks: a tenth of the sample, at least 10."""
        return max(10, math.ceil(self.sample / 10))

    @property
    def looks(self) -> int:
        return max(1, math.ceil(self.sample / self.every))

    @property
    def alpha_per_test(self) -> float:
        return self.alpha / (self.looks * max(1, self.candidates))

    def look_sizes(self) -> list[int]:
        """Prefix lengths at which to look (the last look would be the full sample: no need)."""
        return list(range(self.every, self.sample, self.every))

    def decide(self, not_worse: int, n: int) -> Decision:
        if n < self.min_requests:
            return None
        low, high = wilson(not_worse, n, self.alpha_per_test)
        if low > self.threshold:
            return "above"
        if high < self.threshold:
            return "below"
        return None

    def interval(self, not_worse: int, n: int) -> tuple[float, float]:
        return wilson(not_worse, n, self.alpha_per_test)
