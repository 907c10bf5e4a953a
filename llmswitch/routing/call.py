"""The request being served, decoded once by the surface that received it, and how it is shaped for an
upstream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from llmswitch.ledger.bodies import PendingBody


@dataclass(slots=True)
class Call:
    """One client request, decoded once by the surface that received it.

    `__init__` is written out so that mypyc compiles it (see AttemptRecord); a test checks it matches
    the fields. A field with a default factory takes None for "a new empty one".
    """

    request_id: str
    ts: float  # wall clock at arrival
    started: float  # perf_counter at arrival
    key_id: str | None
    model: str
    body: dict[str, Any]
    raw: bytes
    stream: bool
    want_usage: bool
    tags: str | None
    surface: str = "openai"
    upstream_headers: dict[str, bytes] = field(default_factory=dict)  # per upstream api, e.g. anthropic-beta
    route: str | None = None  # an `auto` model's decision trace (JSON), for the ledger
    extra_headers: list[tuple[str, str]] = field(default_factory=list)  # e.g. x-llmswitch-route
    upstream_wait: float = 0.0  # seconds spent waiting on upstreams: the rest is gateway overhead
    attempts: int = 0
    parent: Call | None = None  # the client request a cascade's candidate call belongs to
    prior_cost: float = 0.0  # spent on this request before the final call (a cascade's cheap tries)
    failures: list[str] = field(default_factory=list)

    def __init__(
        self,
        request_id: str,
        ts: float,
        started: float,
        key_id: str | None,
        model: str,
        body: dict[str, Any],
        raw: bytes,
        stream: bool,
        want_usage: bool,
        tags: str | None,
        surface: str = "openai",
        upstream_headers: dict[str, bytes] | None = None,
        route: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
        upstream_wait: float = 0.0,
        attempts: int = 0,
        parent: Call | None = None,
        prior_cost: float = 0.0,
        failures: list[str] | None = None,
    ) -> None:
        self.request_id = request_id
        self.ts = ts
        self.started = started
        self.key_id = key_id
        self.model = model
        self.body = body
        self.raw = raw
        self.stream = stream
        self.want_usage = want_usage
        self.tags = tags
        self.surface = surface
        self.upstream_headers = {} if upstream_headers is None else upstream_headers
        self.route = route
        self.extra_headers = [] if extra_headers is None else extra_headers
        self.upstream_wait = upstream_wait
        self.attempts = attempts
        self.parent = parent
        self.prior_cost = prior_cost
        self.failures = [] if failures is None else failures


def pending_body(call: Call, streamed: bool, response: list[bytes]) -> PendingBody:
    return PendingBody(
        call.request_id, call.ts, call.surface, call.model, call.raw, streamed, response, call.tags
    )


def clamp_max_tokens(raw: bytes, body: dict[str, Any], limit: int | None) -> tuple[bytes, dict[str, Any]]:
    """The request with its output-token limit lowered to the deployment's, when it asks for more."""
    if limit is None:
        return raw, body
    over = [
        k for k in ("max_tokens", "max_completion_tokens") if type(body.get(k)) is int and body[k] > limit
    ]
    if not over:
        return raw, body
    clamped = {**body, **dict.fromkeys(over, limit)}
    return orjson.dumps(clamped), clamped
