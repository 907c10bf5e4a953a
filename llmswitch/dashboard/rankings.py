"""Rankings over the ledger, like OpenRouter's: which models served the traffic, from which labs and
countries, open or closed weights, for what kind of task, at what cost and saving, over time.

Everything is computed from the ledger (read-only, as `llmswitch usage` reads it) and the model
catalog; nothing here runs on the request path. A row counts for the model that *served* it (the
upstream model id), attributed through the catalog to its lab, the lab's country and its weights.
Task categories need the prompts: they come from logged bodies (`logging.bodies: true`), classified
here on demand, the newest `category_sample` of the window.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from llmswitch.catalog import Catalog, ModelInfo, default_catalog
from llmswitch.ledger.reader import LedgerReader, read_ledger
from llmswitch.ledger.usage import report
from llmswitch.policy.rules import weights_open

__all__ = ["RankingOptions", "rankings"]

UNKNOWN = "unknown"
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class RankingOptions:
    since_seconds: float = 7 * DAY
    bucket_seconds: float = DAY  # the time series' step
    top: int = 10  # models named in the time series; the rest are "other"
    baseline: str | None = "gpt-4.1"  # savings: what the same tokens would have cost on this model
    category_sample: int = 2_000  # newest logged prompts classified for the category view
    self_hosted: frozenset[str] = field(default_factory=frozenset)  # provider names on own hardware


@dataclass(slots=True)
class _Tally:
    requests: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0  # served attempts with no known cost

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: _Tally) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.unpriced += other.unpriced

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "tokens": self.tokens,
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "unpriced_requests": self.unpriced,
        }


# Served attempts (the answer the client got, whole or cut short) per provider, served model and key.
_SERVED_SQL = """
SELECT provider, upstream_model, key_id, COUNT(*), COALESCE(SUM(input_tokens), 0),
       COALESCE(SUM(cached_input_tokens), 0), COALESCE(SUM(output_tokens), 0),
       COALESCE(SUM(cost_usd), 0), SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)
FROM attempts WHERE ts >= ? AND status IN ('ok', 'truncated')
GROUP BY provider, upstream_model, key_id
"""

_SERIES_SQL = """
SELECT {bucket} AS bucket, upstream_model,
       COALESCE(SUM(input_tokens), 0) + COALESCE(SUM(output_tokens), 0)
FROM attempts WHERE ts >= ? AND status IN ('ok', 'truncated')
GROUP BY bucket, upstream_model
"""

_BODIES_SQL = """
SELECT b.request,
       (SELECT COALESCE(SUM(a.input_tokens), 0) + COALESCE(SUM(a.output_tokens), 0)
        FROM attempts AS a WHERE a.request_id = b.request_id)
FROM bodies AS b WHERE b.ts >= ? ORDER BY b.id DESC LIMIT ?
"""


def rankings(
    url: str,
    options: RankingOptions | None = None,
    *,
    catalog: Catalog | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The whole dashboard's data as plain JSON-ready values. Raises `LedgerNotFound`."""
    opts = options or RankingOptions()
    cat = catalog or default_catalog()
    end = time.time() if now is None else now
    start = end - opts.since_seconds
    with read_ledger(url) as reader:
        served = reader.rows(_SERVED_SQL, (start,))
        series_sql = _SERIES_SQL.replace("{bucket}", reader.floor("(ts - ?) / ?"))
        series_rows = reader.rows(series_sql, (start, opts.bucket_seconds, start))
        categories = _categories(reader, start, opts.category_sample)
        providers = _providers(reader, opts.since_seconds)
    info_of = _memo(cat.get)

    by_model: dict[str, _Tally] = defaultdict(_Tally)
    by_origin: dict[str, _Tally] = defaultdict(_Tally)
    by_weights: dict[str, _Tally] = defaultdict(_Tally)
    by_hosting: dict[str, _Tally] = defaultdict(_Tally)
    by_lab: dict[str, _Tally] = defaultdict(_Tally)
    by_key: dict[str, _Tally] = defaultdict(_Tally)  # client key ids (names, never the keys)
    total = _Tally()
    model_info: dict[str, ModelInfo | None] = {}
    open_weights: dict[str, bool | None] = {}
    for provider, upstream_model, key_id, n, inp, cached, out, cost, unpriced in served:
        tally = _Tally(n, int(inp), int(cached), int(out), float(cost), int(unpriced))
        model = upstream_model or UNKNOWN
        info = model_info[model] = info_of(model)
        mine = provider in opts.self_hosted
        weights = open_weights.setdefault(model, weights_open(info.open_weights if info else None, mine))
        by_model[model].add(tally)
        by_origin[(info.origin if info else None) or UNKNOWN].add(tally)
        by_weights[{True: "open", False: "closed", None: UNKNOWN}[weights]].add(tally)
        by_lab[(info.lab if info else None) or UNKNOWN].add(tally)
        by_hosting["self-hosted" if provider in opts.self_hosted else "API"].add(tally)
        by_key[key_id or "(no key)"].add(tally)
        total.add(tally)

    models = [
        {
            "model": name,
            **t.as_dict(),
            "token_share": _share(t.tokens, total.tokens),
            "lab": info.lab if info else None,
            "origin": info.origin if info else None,
            "open_weights": open_weights[name],
        }
        for name, t in by_model.items()
        for info in [model_info[name]]
    ]
    models.sort(key=lambda m: (-m["tokens"], -m["requests"], m["model"]))
    return {
        "window": {"start": start, "end": end, "since_seconds": opts.since_seconds},
        "total": total.as_dict(),
        "models": models,
        "labs": _shares(by_lab, total),
        "origins": _shares(by_origin, total),
        "weights": _shares(by_weights, total),
        "hosting": _shares(by_hosting, total),
        "keys": _shares(by_key, total),
        "providers": providers,
        "categories": categories,
        "series": _series(series_rows, [m["model"] for m in models[: opts.top]], start, end, opts),
        "savings": _savings(total, opts.baseline, cat),
    }


def _memo(fn: Callable[[str], ModelInfo | None]) -> Callable[[str], ModelInfo | None]:
    seen: dict[str, ModelInfo | None] = {}

    def get(model: str) -> ModelInfo | None:
        if model not in seen:
            seen[model] = fn(model)
        return seen[model]

    return get


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _shares(groups: dict[str, _Tally], total: _Tally) -> list[dict[str, Any]]:
    rows = [
        {"name": name, **t.as_dict(), "token_share": _share(t.tokens, total.tokens)}
        for name, t in groups.items()
    ]
    rows.sort(key=lambda r: (-r["tokens"], -r["requests"], r["name"]))
    return rows


def _providers(reader: LedgerReader, since_seconds: float) -> list[dict[str, Any]]:
    """Requests, error rate and median latency per provider (every attempt, failed ones included)."""
    return [
        {
            "provider": r["provider"],
            "requests": r["requests"],
            "attempts": r["attempts"],
            "error_rate": r["error_rate"],
            "p50_latency_ms": r["p50_latency_ms"],
            "cost_usd": r["cost_usd"],
        }
        for r in report(reader, since_seconds=since_seconds, by="provider")
    ]


def _series(
    rows: Iterable[tuple[Any, ...]], named: list[str], start: float, end: float, opts: RankingOptions
) -> dict[str, Any]:
    """Tokens per bucket for the top models, the rest summed as "other"."""
    step = opts.bucket_seconds
    buckets = max(1, math.ceil((end - start) / step))
    keep = set(named)
    per: dict[str, list[int]] = {m: [0] * buckets for m in named}
    other = [0] * buckets
    for bucket, model, tokens in rows:
        i = min(max(int(bucket), 0), buckets - 1)
        (per[model] if model in keep else other)[i] += int(tokens)
    if any(other):
        per["other"] = other
    return {"start": start, "step_seconds": step, "buckets": buckets, "tokens": per}


def _categories(reader: LedgerReader, start: float, sample: int) -> dict[str, Any]:
    from llmswitch.categories import CATEGORIES, category_of_messages

    rows = []
    if not reader.postgres:  # prompts are logged to SQLite ledgers only (logging.bodies)
        with contextlib.suppress(sqlite3.OperationalError):  # a ledger older than the bodies table
            rows = reader.rows(_BODIES_SQL, (start, sample))
    counts = {c: [0, 0] for c in CATEGORIES}  # requests, tokens
    classified = 0
    for request, tokens in rows:
        try:
            body = orjson.loads(request)
        except orjson.JSONDecodeError:
            continue
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            continue
        tally = counts[category_of_messages([m for m in messages if isinstance(m, dict)])]
        tally[0] += 1
        tally[1] += int(tokens or 0)
        classified += 1
    ranked = sorted(((c, n, t) for c, (n, t) in counts.items() if n), key=lambda x: (-x[1], x[0]))
    rows_out = [
        {"category": c, "requests": n, "tokens": t, "share": _share(n, classified)} for c, n, t in ranked
    ]
    return {"classified": classified, "sample_limit": sample, "rows": rows_out}


def _savings(total: _Tally, baseline: str | None, cat: Catalog) -> dict[str, Any] | None:
    """What the window's served tokens would have cost on the baseline model, at its lab's list price."""
    if not baseline:
        return None
    prices = cat.prices(baseline)
    if not prices:
        return {"baseline": baseline, "error": f"no list price known for {baseline!r}"}
    p = prices[0]
    uncached = total.input_tokens - total.cached_input_tokens
    cached_rate = p.cached_input if p.cached_input is not None else p.input
    cached = total.cached_input_tokens
    cost = (uncached * p.input + cached * cached_rate + total.output_tokens * p.output) / 1e6
    return {
        "baseline": baseline,
        "baseline_provider": p.provider,
        "baseline_cost_usd": cost,
        "actual_cost_usd": total.cost_usd,
        "saved_usd": cost - total.cost_usd,
        "saved_share": _share(cost - total.cost_usd, cost),
        "unpriced_requests": total.unpriced,
    }
