"""Prometheus metrics, kept as plain numbers and rendered by prometheus-client at scrape time.

prometheus-client's own Counter/Histogram take a lock and several calls per update (~1.5 µs each, seven
updates a request); here an update is a dict lookup and an add on the event-loop thread, the only writer.
The exposition format is still prometheus-client's, through a custom collector; it is imported at the
first scrape, not at start-up (~2 MB per worker that only a scraped gateway needs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

# Gateway overhead lives in the tens of microseconds; request latency spans milliseconds to minutes.
OVERHEAD_BUCKETS = (2.5e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

Labels = tuple[str | int, ...]  # ints (an HTTP status) are rendered as text at scrape time


class Counter:
    def __init__(self, name: str, doc: str, labels: Sequence[str]) -> None:
        self.name, self.doc, self.labels = name, doc, list(labels)
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def family(self) -> Metric:
        from prometheus_client.core import CounterMetricFamily

        fam = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for labels, value in sorted(self.values.items(), key=_by_text):
            fam.add_metric(list(map(str, labels)), value)
        return fam


class Histogram:
    def __init__(self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self.name, self.doc, self.labels = name, doc, list(labels)
        self.bounds = list(buckets)
        self.series: dict[Labels, list[float]] = {}  # per-bucket counts (+Inf last), then the sum

    def series_of(self, labels: Labels) -> list[float]:
        s = self.series.get(labels)
        if s is None:
            s = self.series[labels] = [0.0] * (len(self.bounds) + 2)
        return s

    def observe(self, labels: Labels, value: float) -> None:
        s = self.series_of(labels)
        i = 0  # the first bucket whose bound is >= value; a plain loop, compiled, beats bisect here
        for bound in self.bounds:
            if value <= bound:
                break
            i += 1
        s[i] += 1
        s[-1] += value

    def family(self) -> Metric:
        from prometheus_client.core import HistogramMetricFamily

        fam = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for labels, s in sorted(self.series.items(), key=_by_text):
            cumulative, running = [], 0.0
            for bound, n in zip([*map(str, self.bounds), "+Inf"], s[:-1], strict=True):
                running += n
                cumulative.append((bound, running))
            fam.add_metric(list(map(str, labels)), cumulative, s[-1])
        return fam


def _by_text(item: tuple[Labels, object]) -> list[str]:
    return list(map(str, item[0]))


# Token kinds in the order of a usage series (`Metrics.usage`); the cost in USD comes after them.
TOKEN_KINDS = ("input", "cached_input", "output", "reasoning")


class Metrics:
    def __init__(self) -> None:
        self.requests = Counter(
            "llmswitch_requests",
            "Client requests by model, surface and HTTP status",
            ["model", "surface", "status"],
        )
        self.latency = Histogram(
            "llmswitch_request_duration_seconds",
            "Client request duration, all attempts included",
            ["model"],
            LATENCY_BUCKETS,
        )
        self.ttft = Histogram(
            "llmswitch_time_to_first_token_seconds",
            "Streaming: time until the first event reached the client",
            ["model"],
            LATENCY_BUCKETS,
        )
        self.overhead = Histogram(
            "llmswitch_gateway_overhead_seconds",
            "Time the gateway itself added to a request: duration minus time spent waiting on upstreams",
            [],
            OVERHEAD_BUCKETS,
        )
        # Per (model, provider): the token kinds' totals, then the cost. One lookup a request, where a
        # counter per kind took up to five; rendered as llmswitch_tokens and llmswitch_cost_usd.
        self.usage: dict[tuple[str, str], list[float]] = {}
        self.upstream_errors = Counter(
            "llmswitch_upstream_errors",
            "Failed upstream attempts by provider and error class",
            ["provider", "error_class"],
        )
        self._registry: CollectorRegistry | None = None

    def collect(self) -> Iterator[Metric]:
        for m in (self.requests, self.latency, self.ttft, self.overhead):
            yield m.family()
        yield from self._usage_families()
        yield self.upstream_errors.family()

    def _usage_families(self) -> Iterator[Metric]:
        tokens = Counter(
            "llmswitch_tokens",
            "Tokens by model, provider and kind (input, cached_input, output, reasoning)",
            ["model", "provider", "kind"],
        )
        cost = Counter("llmswitch_cost_usd", "Cost in USD", ["model", "provider"])
        for (model, provider), totals in self.usage.items():
            for kind, n in zip(TOKEN_KINDS, totals, strict=False):
                if n:
                    tokens.inc((model, provider, kind), n)
            if totals[-1]:
                cost.inc((model, provider), totals[-1])
        yield tokens.family()
        yield cost.family()

    def request_done(
        self, model: str, surface: str, status: int, seconds: float, overhead: float | None
    ) -> None:
        """A finished client request: its count, its duration and (if answered) the gateway's overhead."""
        self.requests.inc((model, surface, status))
        self.latency.observe((model,), seconds)
        if overhead is not None:
            self.overhead.observe((), overhead)

    def observe_ttft(self, model: str, seconds: float) -> None:
        self.ttft.observe((model,), seconds)

    def add_usage(
        self,
        model: str,
        provider: str,
        input_tokens: int,
        cached: int,
        output: int,
        reasoning: int,
        cost: float | None,
    ) -> None:
        totals = self._usage_of((model, provider))
        totals[0] += input_tokens
        totals[1] += cached
        totals[2] += output
        totals[3] += reasoning
        if cost:
            totals[4] += cost

    def _usage_of(self, key: tuple[str, str]) -> list[float]:
        totals = self.usage.get(key)
        if totals is None:
            totals = self.usage[key] = [0.0] * (len(TOKEN_KINDS) + 1)
        return totals

    def upstream_error(self, provider: str, error_class: str) -> None:
        self.upstream_errors.inc((provider, error_class))

    def _all(self) -> tuple[tuple[Counter, ...], tuple[Histogram, ...]]:
        return (self.requests, self.upstream_errors), (
            self.latency,
            self.ttft,
            self.overhead,
        )

    def state(self) -> dict[str, list[list[object]]]:
        """Every series as plain JSON: for sharing between worker processes."""
        counters, histograms = self._all()
        out: dict[str, list[list[object]]] = {}
        for c in counters:
            out[c.name] = [[list(labels), value] for labels, value in c.values.items()]
        for h in histograms:
            out[h.name] = [[list(labels), series] for labels, series in h.series.items()]
        out["usage"] = [[list(key), totals] for key, totals in self.usage.items()]
        return out

    def add_state(self, state: dict[str, list[list[Any]]]) -> None:
        """Add another process's `state()` into this one (sums counters and histogram buckets)."""
        counters, histograms = self._all()
        for c in counters:
            for labels, value in state.get(c.name, []):
                c.inc(tuple(labels), float(value))
        for h in histograms:
            for labels, series in state.get(h.name, []):
                _add_into(h.series_of(tuple(labels)), series)
        for (model, provider), totals in state.get("usage", []):
            _add_into(self._usage_of((model, provider)), totals)

    def exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        if self._registry is None:
            self._registry = CollectorRegistry()
            self._registry.register(self)  # any object with collect() is a collector
        return generate_latest(self._registry)


def _add_into(mine: list[float], theirs: list[float]) -> None:
    if len(theirs) == len(mine):  # a worker of another version: skip rather than misalign
        for i, v in enumerate(theirs):
            mine[i] += v


class SharedMetrics:
    """`/metrics` for several worker processes: each publishes its state to a shared directory
    (once a second, and at every scrape), and a scrape of any worker sums every worker's file. Files of
    workers that died stay, so counters never go backwards."""

    def __init__(self, metrics: Metrics, directory: str) -> None:
        self.metrics = metrics
        self.directory = directory
        self.path = os.path.join(directory, f"{os.getpid()}.json")

    def publish(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(self.metrics.state()))
        os.replace(tmp, self.path)  # atomic: a scrape never reads half a file

    def exposition(self) -> bytes:
        self.publish()
        total = Metrics()
        for name in os.listdir(self.directory):
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.directory, name), "rb") as f:
                    total.add_state(orjson.loads(f.read()))
            except (OSError, orjson.JSONDecodeError):
                continue  # a worker mid-replace or gone: its next publish will be read
        return total.exposition()
