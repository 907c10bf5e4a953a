"""One ledger row: a single attempt at serving a request on one deployment."""

from __future__ import annotations

from dataclasses import dataclass

# Attempt outcomes. "truncated": the stream started but the upstream died before it finished.
STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_TRUNCATED = "truncated"
STATUS_REJECTED = "rejected"  # refused by the gateway itself (auth, bad input, unknown model)


@dataclass(slots=True)
class AttemptRecord:
    """A dataclass for its fields, repr and equality; `__init__` is written out (same names, order and
    defaults, checked by a test) because mypyc compiles only a hand-written one: the generated one
    stays interpreted and cost ~0.7 µs per request on the compiled path."""

    request_id: str
    attempt: int  # 1-based; 0 for requests refused before any upstream attempt
    ts: float  # unix seconds when the attempt started
    key_id: str | None
    requested_model: str | None
    provider: str | None
    upstream_model: str | None
    status: str
    http_status: int | None = None
    error_class: str | None = None  # e.g. "timeout", "connect", "reset", "http_429", "bad_body"
    input_tokens: int | None = None  # all prompt tokens, cached ones included
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    output_tokens: int | None = None  # reasoning tokens included
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    streamed: bool = False
    tags: str | None = None  # JSON object text from the x-llmswitch-tags header
    surface: str = "openai"  # which client API served it: openai | anthropic
    route: str | None = None  # JSON trace of an `auto` route's decision (candidates, predictions, calls)

    def __init__(
        self,
        request_id: str,
        attempt: int,
        ts: float,
        key_id: str | None,
        requested_model: str | None,
        provider: str | None,
        upstream_model: str | None,
        status: str,
        http_status: int | None = None,
        error_class: str | None = None,
        input_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        output_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        cost_usd: float | None = None,
        latency_ms: float | None = None,
        ttft_ms: float | None = None,
        streamed: bool = False,
        tags: str | None = None,
        surface: str = "openai",
        route: str | None = None,
    ) -> None:
        self.request_id = request_id
        self.attempt = attempt
        self.ts = ts
        self.key_id = key_id
        self.requested_model = requested_model
        self.provider = provider
        self.upstream_model = upstream_model
        self.status = status
        self.http_status = http_status
        self.error_class = error_class
        self.input_tokens = input_tokens
        self.cached_input_tokens = cached_input_tokens
        self.cache_write_tokens = cache_write_tokens
        self.output_tokens = output_tokens
        self.reasoning_tokens = reasoning_tokens
        self.cost_usd = cost_usd
        self.latency_ms = latency_ms
        self.ttft_ms = ttft_ms
        self.streamed = streamed
        self.tags = tags
        self.surface = surface
        self.route = route
