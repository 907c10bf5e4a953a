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
