"""Adapter over genai-prices: resolve a deployment's model once, snapshot its prices as float `Rates`.

Only the bundled data is used: nothing here starts `UpdatePrices`, so no network access ever happens.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from genai_prices import types as gt
from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id, get_snapshot

from llmswitch.pricing.rates import Rates

__all__ = ["Resolved", "Schedule", "current_snapshot", "rates_at", "resolve"]

_DAY = 86400.0

# The genai-prices price keys that text token usage can reach. Others (web searches, audio, images,
# documents) count things our canonical Usage never reports, so they cannot add to a text request.
_KEYS = (
    "input_mtok",
    "output_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "output_reasoning_mtok",
    "requests_kcount",
)

_Price = Decimal | gt.TieredPrices | None


def current_snapshot() -> DataSnapshot:
    return get_snapshot()


@dataclass(frozen=True, slots=True)
class Resolved:
    provider: gt.Provider
    model: gt.ModelInfo
    schedule: Schedule

    @property
    def source(self) -> str:
        return f"genai-prices:{self.provider.id}/{self.model.id}"


def resolve(
    snapshot: DataSnapshot,
    *,
    provider: str,
    base_url: str | None,
    upstream_model: str,
    pricing_provider: str | None,
) -> Resolved | str:
    """The genai-prices provider and model for a deployment, or a reason why there is none."""
    found = _find_provider(snapshot, provider, base_url, pricing_provider)
    if isinstance(found, str):
        return found
    # find_model also follows the provider's fallbacks (e.g. Azure → OpenAI's models).
    model = found.find_model(upstream_model, all_providers=snapshot.providers)
    if model is None:
        return f"genai-prices provider {found.id!r} has no model matching {upstream_model!r}"
    return Resolved(found, model, Schedule.of(model))


def _find_provider(
    snapshot: DataSnapshot, provider: str, base_url: str | None, pricing_provider: str | None
) -> gt.Provider | str:
    if pricing_provider is not None:
        # An explicit id is the operator's decision: no guessing past it if it is wrong.
        p = find_provider_by_id(snapshot.providers, pricing_provider)
        return p if p is not None else f"genai-prices has no provider {pricing_provider!r}"
    if base_url:
        for p in snapshot.providers:
            if re.match(p.api_pattern, base_url):
                return p
    # Last resort: the config's provider name, through genai-prices' own id aliases ("bedrock" → aws).
    p = find_provider_by_id(snapshot.providers, provider)
    if p is not None:
        return p
    return f"no genai-prices provider matches base_url {base_url!r} or provider name {provider!r}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """Instants at which a model's conditional prices can switch (dated changes, time-of-day windows).

    Between two consecutive boundaries `get_prices()` is constant, so a snapshot stays exact over the
    whole gap; this lets the pricer refresh at e.g. DeepSeek's 16:30 UTC switch to the second.
    """

    dates: tuple[float, ...]  # sorted epoch seconds (UTC midnights of start dates)
    day_offsets: tuple[float, ...]  # seconds after UTC midnight, repeating daily

    @classmethod
    def of(cls, model: gt.ModelInfo) -> Schedule:
        dates: set[float] = set()
        offsets: set[float] = set()
        constraints = [] if isinstance(model.prices, gt.ModelPrice) else [c.constraint for c in model.prices]
        for c in constraints:
            if isinstance(c, gt.StartDateConstraint):
                dates.add(datetime.combine(c.start_date, time(0), UTC).timestamp())
            elif isinstance(c, gt.TimeOfDateConstraint):
                offsets.add(_utc_offset(c.start_time))
                offsets.add(_utc_offset(c.end_time))
        return cls(tuple(sorted(dates)), tuple(sorted(offsets)))

    def window(self, ts: float, refresh_seconds: float) -> tuple[float, float]:
        """[lo, hi) around `ts` over which the prices at `ts` hold, capped at ±refresh_seconds."""
        lo, hi = ts - refresh_seconds, ts + refresh_seconds
        if self.dates:
            i = bisect.bisect_right(self.dates, ts)
            if i:
                lo = max(lo, self.dates[i - 1])
            if i < len(self.dates):
                hi = min(hi, self.dates[i])
        if self.day_offsets:
            midnight = math.floor(ts / _DAY) * _DAY
            for off in self.day_offsets:
                for b in (midnight - _DAY + off, midnight + off, midnight + _DAY + off):
                    if b <= ts:
                        lo = max(lo, b)
                    else:
                        hi = min(hi, b)
        return lo, hi


def _utc_offset(t: time) -> float:
    # Same normalisation as genai-prices: naive constraint times are UTC.
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    u = datetime.combine(date(1970, 1, 1), t).astimezone(UTC)
    return u.hour * 3600 + u.minute * 60 + u.second + u.microsecond / 1e6


def rates_at(model: gt.ModelInfo, ts: float) -> Rates | None:
    """Float snapshot of the model's standard prices at `ts`; None if it has no token prices then."""
    mp = model.get_prices(datetime.fromtimestamp(ts, UTC))
    prices: dict[str, _Price] = {k: getattr(mp, k) for k in _KEYS}
    if prices["input_mtok"] is None and prices["output_mtok"] is None:
        return None  # priced per audio hour, per character, ...: not a text model we can bill
    thresholds = sorted({t.start for p in prices.values() if isinstance(p, gt.TieredPrices) for t in p.tiers})
    return _rates(prices, None, tuple((t, _rates(prices, t, ())) for t in thresholds))


def _rates(prices: dict[str, _Price], above: int | None, tiers: tuple[tuple[int, Rates], ...]) -> Rates:
    def at(key: str) -> float | None:
        return _price_above(prices[key], above)

    per_k_requests = at("requests_kcount")
    return Rates(
        input=at("input_mtok") or 0.0,  # unpriced counts as free, as in genai-prices
        output=at("output_mtok") or 0.0,
        cached_input=at("cache_read_mtok"),
        cache_write=at("cache_write_mtok"),
        tiers=tiers,
        reasoning_output=at("output_reasoning_mtok"),
        per_request=per_k_requests / 1000 if per_k_requests else 0.0,
    )


def _price_above(price: _Price, threshold: int | None) -> float | None:
    """The price paid once total input tokens exceed `threshold` (None: the base price)."""
    if price is None:
        return None
    if isinstance(price, Decimal):
        return float(price)
    chosen = price.base
    if threshold is not None:
        for tier in price.tiers:  # sorted ascending by genai-prices
            if tier.start <= threshold:
                chosen = tier.price
    return float(chosen)
