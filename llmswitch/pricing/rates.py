"""Float price rates and the per-request cost arithmetic (the gateway's hot path).

genai-prices' own `calc_price` takes ~130 µs (unit registry plus Decimal math); pricing here is a few
float multiplications on rates snapshotted ahead of time, so it costs well under the ~2 µs budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from llmswitch.pricing.usage import Usage

__all__ = ["Rates", "cost_of", "price_override"]


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens.

    `None` for a cache rate means those tokens are billed at `input`, which is also how genai-prices
    treats a model that has no separate cache price.
    """

    input: float
    output: float
    cached_input: float | None = None  # None → cached tokens priced at `input`
    cache_write: float | None = None  # None → cache-write tokens priced at `input`
    # (threshold, rates): when the request's total input tokens exceed `threshold`, *all* tokens use
    # `rates` (the "cliff" model genai-prices and the providers use). Ascending; the highest crossed wins.
    tiers: tuple[tuple[int, Rates], ...] = ()
    # The two rarer genai-prices units that plain text requests can still hit (Perplexity models):
    reasoning_output: float | None = None  # None → reasoning tokens priced at `output`
    per_request: float = 0.0  # flat USD per request


def cost_of(rates: Rates, usage: Usage) -> float:
    """USD for one request. Mirrors genai-prices' leaf arithmetic: the most specific priced unit wins."""
    inp = usage.input_tokens
    r = rates
    if r.tiers:
        for threshold, tier in reversed(r.tiers):
            if inp > threshold:
                r = tier
                break
    cached = usage.cached_input_tokens
    written = usage.cache_write_tokens
    out = usage.output_tokens
    total = r.input * (inp - cached - written)
    if r.cached_input is None:
        total += r.input * cached
    else:
        total += r.cached_input * cached
    if r.cache_write is None:
        total += r.input * written
    else:
        total += r.cache_write * written
    if r.reasoning_output is None:
        total += r.output * out
    else:
        reasoning = usage.reasoning_tokens
        total += r.output * (out - reasoning) + r.reasoning_output * reasoning
    if total < 0.0:
        # Only inconsistent usage (cached > input) gets here; genai-prices would raise, a bill must not.
        total = 0.0
    return total / 1e6 + r.per_request


_OVERRIDE_KEYS = frozenset({"input", "output", "cached_input", "cache_write"})


def price_override(d: Mapping[str, float]) -> Rates:
    """Rates from a config `price:` mapping (USD per Mtok): `input`, `output`, optional cache rates."""
    unknown = d.keys() - _OVERRIDE_KEYS
    if unknown:
        raise ValueError(f"unknown price key(s): {', '.join(sorted(unknown))}")
    for key in ("input", "output"):
        if d.get(key) is None:
            raise ValueError(f"price override needs {key!r} (USD per million tokens)")
    return Rates(
        input=_rate(d, "input") or 0.0,
        output=_rate(d, "output") or 0.0,
        cached_input=_rate(d, "cached_input"),
        cache_write=_rate(d, "cache_write"),
    )


def _rate(d: Mapping[str, float], key: str) -> float | None:
    v = d.get(key)
    if v is None:  # absent, or an explicit null from a dumped config model
        return None
    f = float(v)
    if not (math.isfinite(f) and f >= 0.0):
        raise ValueError(f"price {key!r} must be a finite non-negative number, got {v!r}")
    return f
