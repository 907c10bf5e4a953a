"""Prometheus metrics. Label children are cached so the request path pays one dict lookup each."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

# Gateway overhead lives in the tens of microseconds; request latency spans milliseconds to minutes.
_OVERHEAD_BUCKETS = (2.5e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "llmswitch_requests",
            "Client requests by model, surface and HTTP status",
            ["model", "surface", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "llmswitch_request_duration_seconds",
            "Client request duration, all attempts included",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "llmswitch_time_to_first_token_seconds",
            "Streaming: time until the first event reached the client",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "llmswitch_gateway_overhead_seconds",
            "Time the gateway itself added to a request: duration minus time spent waiting on upstreams",
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "llmswitch_tokens",
            "Tokens by model, provider and kind (input, cached_input, output, reasoning)",
            ["model", "provider", "kind"],
            registry=r,
        )
        self.cost = Counter("llmswitch_cost_usd", "Cost in USD", ["model", "provider"], registry=r)
        self.upstream_errors = Counter(
            "llmswitch_upstream_errors",
            "Failed upstream attempts by provider and error class",
            ["provider", "error_class"],
            registry=r,
        )
        self._counters: dict[tuple[str, ...], Counter] = {}
        self._histograms: dict[tuple[str, ...], Histogram] = {}

    def _counter(self, metric: Counter, *labels: str) -> Counter:
        key = (metric._name, *labels)
        c = self._counters.get(key)
        if c is None:
            c = self._counters[key] = metric.labels(*labels)
        return c

    def _histogram(self, metric: Histogram, *labels: str) -> Histogram:
        key = (metric._name, *labels)
        h = self._histograms.get(key)
        if h is None:
            h = self._histograms[key] = metric.labels(*labels)
        return h

    def inc_request(self, model: str, surface: str, status: int) -> None:
        self._counter(self.requests, model, surface, str(status)).inc()

    def observe_latency(self, model: str, seconds: float) -> None:
        self._histogram(self.latency, model).observe(seconds)

    def observe_ttft(self, model: str, seconds: float) -> None:
        self._histogram(self.ttft, model).observe(seconds)

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
        for kind, n in (
            ("input", input_tokens),
            ("cached_input", cached),
            ("output", output),
            ("reasoning", reasoning),
        ):
            if n:
                self._counter(self.tokens, model, provider, kind).inc(n)
        if cost:
            self._counter(self.cost, model, provider).inc(cost)

    def upstream_error(self, provider: str, error_class: str) -> None:
        self._counter(self.upstream_errors, provider, error_class).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
