"""Price comparison behind `llmswitch prices`: what a workload, or last week's real traffic, costs on
each model and provider, against a baseline.

Rows are `Candidate`s from three places: the catalog (genai-prices list prices per provider), the
config's deployments (their `price:` override or genai-prices, exactly as the gateway bills them),
and any extra rows a caller passes to `compare`. The self-hosting cost model plugs in there: a
self-hosted deployment is a `Candidate(kind="self-hosted", rates=Rates(input=..., output=...))` with
its effective $/Mtok, and is then costed, ranked and filtered like an API.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from llmswitch.pricing import _genai
from llmswitch.pricing.rates import Rates, cost_of, price_override
from llmswitch.pricing.usage import Usage

if TYPE_CHECKING:
    from llmswitch.catalog import Catalog, ModelInfo
    from llmswitch.config import Config

__all__ = [
    "EU",
    "Candidate",
    "Comparison",
    "Row",
    "Traffic",
    "TrafficBucket",
    "Workload",
    "catalog_candidates",
    "compare",
    "config_candidates",
    "matches_origin",
    "pick_baseline",
    "read_traffic",
    "traffic_cost",
    "workload_cost",
]

Kind = Literal["api", "config", "self-hosted"]

# Member states, so that `--origin EU` finds Mistral (FR) and friends.
EU = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Workload:
    """One request's tokens; `input_tokens` includes `cached_input_tokens`."""

    input_tokens: int = 2000
    output_tokens: int = 500
    cached_input_tokens: int = 0

    @classmethod
    def parse(cls, text: str) -> Workload:
        """`IN:OUT` or `IN:OUT:CACHED` (cached input tokens, part of IN)."""
        m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*(?::\s*(\d+)\s*)?", text)
        if not m:
            raise ValueError(f"invalid workload {text!r} (use IN_TOKENS:OUT_TOKENS, e.g. 2000:500)")
        w = cls(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
        if w.cached_input_tokens > w.input_tokens:
            raise ValueError(f"invalid workload {text!r}: cached input tokens exceed input tokens")
        return w

    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            cached_input_tokens=self.cached_input_tokens,
            output_tokens=self.output_tokens,
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    model: str  # the row's name: a configured model name or a catalog id
    provider: str  # a config provider name, or a genai-prices provider id
    upstream_model: str  # the id sent upstream
    rates: Rates | None  # None: no known price
    source: str  # "genai-prices:<provider>/<model>", "override", "self-hosted", "unknown"
    kind: Kind = "api"
    origin: str | None = None  # country of the model's lab
    open_weights: bool | None = None
    licence: str | None = None
    lab: str | None = None
    region: str | None = None  # jurisdiction of the provider serving it


@dataclass(frozen=True, slots=True)
class TrafficBucket:
    """Served requests that share one input size: tiered prices switch on per-request input tokens,
    so requests are grouped by it and everything else is summed."""

    input_tokens: int  # per request
    requests: int
    cached_input_tokens: int  # sums over the bucket
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int


@dataclass(frozen=True, slots=True)
class Traffic:
    since_seconds: float | None
    requests: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    actual_cost_usd: float | None  # what the ledger recorded, failed attempts included
    buckets: tuple[TrafficBucket, ...]


@dataclass(frozen=True, slots=True)
class Row:
    candidate: Candidate
    cost_per_1k: float | None  # USD for 1,000 requests of the workload
    traffic_cost: float | None  # USD for the ledger's traffic, when repricing it
    times_cheaper: float | None  # baseline cost / this cost (same measure as the sort)

    @property
    def cost(self) -> float | None:
        return self.traffic_cost if self.traffic_cost is not None else self.cost_per_1k


@dataclass(frozen=True, slots=True)
class Comparison:
    rows: list[Row]
    baseline: Row | None
    workload: Workload
    traffic: Traffic | None
    at: float


# -- cost arithmetic ------------------------------------------------------------------------------


def workload_cost(rates: Rates, workload: Workload, requests: int = 1000) -> float:
    return requests * cost_of(rates, workload.usage())


def traffic_cost(rates: Rates, traffic: Traffic) -> float:
    """Exact cost of the traffic at these rates: per bucket, the tier its input size selects, then the
    summed tokens (cost is linear once the tier is fixed) plus any per-request fee."""
    total = 0.0
    for b in traffic.buckets:
        tier = _tier(rates, b.input_tokens)
        flat = dataclasses.replace(tier, tiers=(), per_request=0.0)
        usage = Usage(
            input_tokens=b.input_tokens * b.requests,
            cached_input_tokens=b.cached_input_tokens,
            cache_write_tokens=b.cache_write_tokens,
            output_tokens=b.output_tokens,
            reasoning_tokens=b.reasoning_tokens,
        )
        total += cost_of(flat, usage) + tier.per_request * b.requests
    return total


def _tier(rates: Rates, input_tokens: int) -> Rates:
    for threshold, tier in reversed(rates.tiers):  # same rule as rates.cost_of
        if input_tokens > threshold:
            return tier
    return rates


# -- candidates -----------------------------------------------------------------------------------


def catalog_candidates(
    catalog: Catalog,
    model_ids: Iterable[str],
    *,
    at: float,
    providers: Collection[str] | None = None,
    regions: dict[str, str] | None = None,
) -> list[Candidate]:
    """One candidate per (model, provider) list price; a model with none gets one unpriced row.

    Raises KeyError naming the ids the catalog does not know.
    """
    out: list[Candidate] = []
    unknown: list[str] = []
    for model_id in model_ids:
        info = catalog.get(model_id)
        if info is None:
            unknown.append(model_id)
            continue
        prices = catalog.prices(model_id, at=at, providers=providers)
        for p in prices:
            out.append(
                _with_info(
                    Candidate(info.id, p.provider, p.upstream, p.rates, p.source, "api"),
                    info,
                    (regions or {}).get(p.provider),
                )
            )
        if not prices:
            out.append(_with_info(Candidate(info.id, "-", info.id, None, "unknown", "api"), info, None))
    if unknown:
        raise KeyError(f"unknown model(s): {', '.join(unknown)}")
    return out


def config_candidates(config: Config, catalog: Catalog, *, at: float) -> list[Candidate]:
    """Every configured deployment, priced as the gateway prices it (override, else genai-prices)."""
    snapshot = _genai.current_snapshot()
    out: list[Candidate] = []
    for name, model in config.models.items():
        for dep in model.deployments:
            p = config.providers[dep.provider]
            rates: Rates | None
            if dep.price is not None:
                rates, source = price_override(dep.price.model_dump(exclude_none=True)), "override"
            else:
                found = _genai.resolve(
                    snapshot,
                    provider=dep.provider,
                    base_url=p.base_url,
                    upstream_model=dep.model,
                    pricing_provider=p.pricing_provider,
                )
                if isinstance(found, str):
                    rates, source = None, "unknown"
                else:
                    rates, source = _genai.rates_at(found.model, at), found.source
            info = catalog.get(dep.model) or catalog.get(name)
            c = Candidate(name, dep.provider, dep.model, rates, source, "config")
            out.append(_with_info(c, info, p.region))
    return out


def _with_info(c: Candidate, info: ModelInfo | None, region: str | None) -> Candidate:
    if info is None:
        return dataclasses.replace(c, region=region)
    return dataclasses.replace(
        c,
        origin=info.origin,
        open_weights=info.open_weights,
        licence=info.licence,
        lab=info.lab,
        region=region,
    )


def pick_baseline(
    name: str,
    catalog: Catalog,
    *,
    at: float,
    configured: Sequence[Candidate] = (),
    providers: Collection[str] | None = None,
) -> Candidate | None:
    """A configured model's first priced deployment, else the catalog model at its lab's own API
    (else its cheapest listed provider)."""
    for c in configured:
        if c.model == name and c.rates is not None:
            return c
    try:
        found = catalog_candidates(catalog, [name], at=at, providers=providers)
    except KeyError:
        return None
    return next((c for c in found if c.rates is not None), None)  # catalog.prices puts the lab first


# -- comparison -----------------------------------------------------------------------------------


def matches_origin(origin: str | None, wanted: Collection[str]) -> bool:
    if origin is None:
        return False
    o = origin.upper()
    return o in wanted or ("EU" in wanted and o in EU)


def compare(
    candidates: Iterable[Candidate],
    *,
    workload: Workload = Workload(),
    baseline: Candidate | None = None,
    traffic: Traffic | None = None,
    origins: Collection[str] | None = None,
    open_weights_only: bool = False,
    extra: Iterable[Candidate] = (),
    at: float | None = None,
) -> Comparison:
    """Cost every candidate, filter, and sort cheapest first (unpriced rows last).

    `extra` takes rows from elsewhere (self-hosted deployments). A catalog row that prices the same
    genai-prices entry as a configured deployment is dropped as a duplicate. Filters apply to rows,
    never to the baseline.
    """
    wanted = {o.upper() for o in origins} if origins else None
    pool = [*candidates, *extra]
    configured_sources = {c.source for c in pool if c.kind != "api" and c.source.startswith("genai-prices:")}
    seen: set[tuple[str, str, str]] = set()
    rows: list[Row] = []
    base = _cost_row(baseline, workload, traffic, None) if baseline is not None else None
    base_cost = base.cost if base is not None else None
    for c in pool:
        if c.kind == "api" and c.source in configured_sources:
            continue
        ident = (c.model, c.provider, c.source)
        if ident in seen:
            continue
        seen.add(ident)
        if wanted is not None and not matches_origin(c.origin, wanted):
            continue
        if open_weights_only and c.open_weights is not True:
            continue
        rows.append(_cost_row(c, workload, traffic, base_cost))
    rows.sort(key=lambda r: (r.cost is None, r.cost or 0.0, r.candidate.model, r.candidate.provider))
    if base is not None and base_cost is not None:
        base = dataclasses.replace(base, times_cheaper=1.0)
    return Comparison(rows, base, workload, traffic, time.time() if at is None else at)


def _cost_row(c: Candidate, workload: Workload, traffic: Traffic | None, base_cost: float | None) -> Row:
    if c.rates is None:
        return Row(c, None, None, None)
    per_1k = workload_cost(c.rates, workload)
    on_traffic = traffic_cost(c.rates, traffic) if traffic is not None else None
    cost = on_traffic if traffic is not None else per_1k
    ratio = base_cost / cost if (base_cost is not None and cost) else None
    return Row(c, per_1k, on_traffic, ratio)


# -- the ledger's traffic -----------------------------------------------------------------------------


def read_traffic(path_or_url: str, *, since_seconds: float | None, now: float | None = None) -> Traffic:
    """Served requests in the window, from the ledger opened read-only.

    A request counts once, with the tokens of the attempt that served it (its last `ok` or
    `truncated` attempt): that is the traffic another model would have had to answer. Requests that
    no attempt served are left out; the actual cost sums every attempt, as billed.
    """
    from llmswitch.ledger.reader import read_ledger

    since = -1e300 if since_seconds is None else (time.time() if now is None else now) - since_seconds
    with read_ledger(path_or_url) as reader:
        bucket_rows = reader.rows(_SERVED_SQL, (since, since))
        [(actual,)] = reader.rows("SELECT SUM(cost_usd) FROM attempts WHERE ts >= ?", (since,))
    buckets = tuple(TrafficBucket(*(int(v) for v in r)) for r in bucket_rows)
    return Traffic(
        since_seconds=since_seconds,
        requests=sum(b.requests for b in buckets),
        input_tokens=sum(b.input_tokens * b.requests for b in buckets),
        cached_input_tokens=sum(b.cached_input_tokens for b in buckets),
        output_tokens=sum(b.output_tokens for b in buckets),
        actual_cost_usd=None if actual is None else float(actual),
        buckets=buckets,
    )


_SERVED_SQL = """
WITH served AS (
    SELECT request_id, MAX(attempt) AS attempt FROM attempts
    WHERE ts >= ? AND status IN ('ok', 'truncated') GROUP BY request_id
)
SELECT COALESCE(a.input_tokens, 0) AS inp, COUNT(*),
       COALESCE(SUM(a.cached_input_tokens), 0), COALESCE(SUM(a.cache_write_tokens), 0),
       COALESCE(SUM(a.output_tokens), 0), COALESCE(SUM(a.reasoning_tokens), 0)
FROM attempts AS a JOIN served AS s ON a.request_id = s.request_id AND a.attempt = s.attempt
WHERE a.ts >= ? AND a.status IN ('ok', 'truncated')
GROUP BY inp ORDER BY inp
"""
