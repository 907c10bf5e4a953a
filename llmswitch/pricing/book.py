"""Per-deployment pricing from genai-prices, fast enough for every request.

All lookups (provider, model) happen once in `PriceBook.for_deployment`. A `DeploymentPricer` then holds a
float `Rates` snapshot plus the time window it is exact for; `cost()` is a range check and a few float
operations, and only re-reads genai-prices when the window is left (at most every `refresh_seconds`, and
exactly at dated price changes or time-of-day switches such as DeepSeek's off-peak hours).
"""

from __future__ import annotations

import logging
import math

from genai_prices.data_snapshot import DataSnapshot

from llmswitch.pricing import _genai
from llmswitch.pricing.rates import Rates, cost_of, price_override
from llmswitch.pricing.usage import Usage

__all__ = ["DeploymentPricer", "PriceBook", "Rates", "price_override"]

log = logging.getLogger("llmswitch.pricing")

_ALWAYS = (-math.inf, math.inf)


class PriceBook:
    """Builds pricers; remembers which unknown prices it has already warned about."""

    def __init__(self, *, refresh_seconds: float = 60.0) -> None:
        self.refresh_seconds = refresh_seconds
        self._warned: set[tuple[str, str]] = set()

    def for_deployment(
        self,
        *,
        provider: str,
        base_url: str | None,
        upstream_model: str,
        pricing_provider: str | None = None,
        override: Rates | None = None,
    ) -> DeploymentPricer:
        return DeploymentPricer(
            self,
            provider=provider,
            base_url=base_url,
            upstream_model=upstream_model,
            pricing_provider=pricing_provider,
            override=override,
        )

    def _warn_once(self, provider: str, upstream_model: str, reason: str) -> None:
        key = (provider, upstream_model)
        if key in self._warned:
            return
        self._warned.add(key)
        log.warning(
            "no price for model %r on provider %r (%s); its requests are recorded with cost=None."
            " Set `price:` on the deployment to bill it.",
            upstream_model,
            provider,
            reason,
        )


class DeploymentPricer:
    """Prices one deployment. Not shared across threads by design; races would only redo a snapshot."""

    __slots__ = ("_book", "_key", "_resolved", "_snapshot", "_state", "source")

    def __init__(
        self,
        book: PriceBook,
        *,
        provider: str,
        base_url: str | None,
        upstream_model: str,
        pricing_provider: str | None,
        override: Rates | None,
    ) -> None:
        self._book = book
        self._key = (provider, base_url, upstream_model, pricing_provider)
        self._resolved: _genai.Resolved | None = None
        self._snapshot: DataSnapshot | None = None
        # (lo, hi, rates): `rates` hold for lo <= ts < hi. One tuple so a refresh swaps it atomically.
        self._state: tuple[float, float, Rates | None]
        self.source: str
        if override is not None:
            self.source = "override"
            self._state = (*_ALWAYS, override)
        else:
            self._resolve()
            # Empty window: the first cost()/rates() call takes the snapshot for its own timestamp.
            self._state = (math.inf, -math.inf, None)

    def cost(self, usage: Usage, ts: float) -> float | None:
        """USD for one request at unix time `ts`, or None if the price is unknown. Never raises."""
        lo, hi, rates = self._state
        if not lo <= ts < hi:
            rates = self._refresh(ts)
        if rates is None:
            return None
        return cost_of(rates, usage)

    def rates(self, ts: float) -> Rates | None:
        lo, hi, rates = self._state
        if not lo <= ts < hi:
            rates = self._refresh(ts)
        return rates

    def _resolve(self) -> None:
        provider, base_url, model, pricing_provider = self._key
        self._snapshot = snapshot = _genai.current_snapshot()
        found = _genai.resolve(
            snapshot,
            provider=provider,
            base_url=base_url,
            upstream_model=model,
            pricing_provider=pricing_provider,
        )
        if isinstance(found, str):
            self._resolved = None
            self.source = "unknown"
            self._book._warn_once(provider, model, found)
        else:
            self._resolved = found
            self.source = found.source
            log.debug("pricing %s on %s from %s", model, provider, found.source)

    def _refresh(self, ts: float) -> Rates | None:
        try:
            if _genai.current_snapshot() is not self._snapshot:
                # Only if someone swapped genai-prices' data (e.g. enabled UpdatePrices): look up again.
                self._resolve()
            resolved = self._resolved
            if resolved is None:
                # Unknown: keep answering None, re-checking only for swapped data once per window.
                self._state = (ts - self._book.refresh_seconds, ts + self._book.refresh_seconds, None)
                return None
            rates = _genai.rates_at(resolved.model, ts)
            lo, hi = resolved.schedule.window(ts, self._book.refresh_seconds)
        except Exception as e:  # a pricing bug must never fail a request
            provider, _, model, _ = self._key
            self._book._warn_once(provider, model, f"genai-prices error: {e!r}")
            rates, lo, hi = None, ts, ts + self._book.refresh_seconds
        else:
            if rates is None:
                provider, _, model, _ = self._key
                self._book._warn_once(provider, model, f"{self.source} has no token prices")
        self._state = (lo, hi, rates)
        return rates
