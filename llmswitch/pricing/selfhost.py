"""What a request costs on hardware you rent by the hour: its share of the busy GPU time.

A self-hosted deployment costs `gpus × gpu_hour_usd` per hour whether it is busy or not. The gateway
sees every request it sends there, so it measures, over a sliding window (default 5 minutes):

- busy time B: seconds during which at least one request was in flight;
- request time S: the sum of the requests' latencies (overlapping requests each count);
- tokens N: input + output tokens served.

Effective concurrency is C = S / B (how many requests shared the hardware on average while it worked).
A request of latency L occupied L / C seconds of the whole deployment, so

    cost = (L / C) × gpus × gpu_hour_usd / 3600

Summed over the window this charges exactly the busy time, B × gpus × gpu_hour_usd / 3600: idle hours
are not billed to requests (they show up as low utilisation, not as cost). The effective price shown
by `llmswitch prices` is the busy-time cost per token served: gpus × gpu_hour_usd / 3600 / (N / B) × 1e6
USD per million tokens. Before the window has data, C = 1 (a lone request pays for its whole time).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from llmswitch.ledger.usage import LedgerNotFound, deployment_totals
from llmswitch.pricing.compare import Candidate
from llmswitch.pricing.rates import Rates

if TYPE_CHECKING:
    from llmswitch.config import Config


class Occupancy:
    """One request's stay on a self-hosted deployment; `finish` is idempotent."""

    __slots__ = ("_cost", "_meter")

    def __init__(self, meter: SelfHostedMeter) -> None:
        self._meter: SelfHostedMeter | None = meter
        self._cost = 0.0

    def finish(self, latency: float, tokens: int) -> float:
        if self._meter is not None:
            self._cost = self._meter.end(latency, tokens)
            self._meter = None
        return self._cost


class SelfHostedMeter:
    def __init__(self, gpu_hour_usd: float, gpus: int, *, window: float = 300.0) -> None:
        self.usd_per_second = gpu_hour_usd * gpus / 3600.0
        self.window = window
        self._clock = time.monotonic
        self._inflight = 0
        self._busy_since = 0.0
        # (end time, busy seconds, request seconds, tokens) per finished request, oldest first
        self._events: deque[tuple[float, float, float, int]] = deque()
        self._busy = 0.0
        self._request = 0.0
        self._tokens = 0

    def begin(self) -> Occupancy:
        now = self._clock()
        if self._inflight == 0:
            self._busy_since = now
        self._inflight += 1
        return Occupancy(self)

    def end(self, latency: float, tokens: int) -> float:
        """Record a finished request; returns its cost in USD."""
        now = self._clock()
        self._inflight = max(self._inflight - 1, 0)
        busy = now - self._busy_since
        self._busy_since = now
        if self._inflight == 0:
            self._busy_since = 0.0
        self._events.append((now, busy, latency, tokens))
        self._busy += busy
        self._request += latency
        self._tokens += tokens
        self._expire(now)
        return latency / self.concurrency * self.usd_per_second

    @property
    def concurrency(self) -> float:
        return max(self._request / self._busy, 1.0) if self._busy > 0 else 1.0

    def usd_per_mtok(self) -> float | None:
        """Busy-time cost per million tokens served, None before any traffic."""
        if self._busy <= 0 or self._tokens <= 0:
            return None
        return self.usd_per_second / (self._tokens / self._busy) * 1e6

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] < now - self.window:
            _, busy, request, tokens = self._events.popleft()
            self._busy -= busy
            self._request -= request
            self._tokens -= tokens


def self_hosted_candidates(config: Config | None, at: float) -> Iterable[Candidate]:
    """`llmswitch prices` rows for self-hosted deployments: the $/Mtok their last 7 days of traffic cost.

    Costs in the ledger are the busy-time shares above, so cost / tokens is the effective price per
    token served (one blended rate for input and output)."""
    if config is None:
        return []
    try:
        totals = deployment_totals(config.storage.url, since_seconds=7 * 86400)
    except LedgerNotFound:
        totals = {}
    rows = []
    for name, model in config.models.items():
        for d in model.deployments:
            if d.self_hosted is None:
                continue
            cost, tokens = totals.get((d.provider, d.model), (0.0, 0))
            per_mtok = cost / tokens * 1e6 if tokens else None
            rates = Rates(input=per_mtok, output=per_mtok) if per_mtok is not None else None
            rows.append(
                Candidate(
                    model=name,
                    provider=d.provider,
                    upstream_model=d.model,
                    rates=rates,
                    source="self-hosted",
                    kind="self-hosted",
                    region=config.providers[d.provider].region,
                )
            )
    return rows
