"""Serving an `auto` model: the strategy decides, the executor calls, the client gets one answer.

A predictive decision names a model and the request goes there as usual (streamed if asked). A cascade
calls candidates itself, non-streamed, through the same executor (so every call is priced, retried and
in the ledger under the request's id); only the accepted answer reaches the client, re-streamed if the
client asked for a stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from llmswitch.api.errors import GatewayError
from llmswitch.api.server import Responder
from llmswitch.ledger.bodies import answer_text
from llmswitch.routing.auto import Answer, Strategy, trace_header
from llmswitch.routing.auto.features import prompt_text
from llmswitch.routing.auto.strategies import PredictiveStrategy
from llmswitch.routing.call import Call
from llmswitch.routing.executor import Executor
from llmswitch.routing.plan import ModelRoute
from llmswitch.translate.replay import replay_as_stream


class CapturedResponse:
    """A Responder that keeps the answer instead of sending it: a cascade's candidate call."""

    closed = False

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.on_pause: Callable[[], None] | None = None
        self.on_resume: Callable[[], None] | None = None

    def respond(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        content_type: bytes = b"application/json",
    ) -> None:
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def start_stream(self, status: int, headers: list[tuple[str, str]], first: bytes = b"") -> None:
        raise RuntimeError("candidate calls are never streamed")

    def send_chunk(self, data: bytes) -> None:
        raise RuntimeError("candidate calls are never streamed")

    def end_stream(self) -> None:
        raise RuntimeError("candidate calls are never streamed")


def min_quality(raw: bytes | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise GatewayError(
            400, "x-llmswitch-min-quality must be a number in [0, 1]", "invalid_header"
        ) from None
    if not 0 <= value <= 1:
        raise GatewayError(400, "x-llmswitch-min-quality must be a number in [0, 1]", "invalid_header")
    return value


def decide_now(call: Call, strategy: Strategy, target: float | None) -> str | None:
    """The model a predictive strategy picks, without calling any candidate, so the request goes on the
    executor's common path (callbacks, no task) like a plain one. None for strategies that call
    candidates (cascade, hybrid): those go through `serve_auto`."""
    if not isinstance(strategy, PredictiveStrategy):
        return None
    model, trace = strategy.decide(prompt_text(_messages(call)), target)
    call.extra_headers.append(_record_route(call, trace))
    return model


def _messages(call: Call) -> list[dict[str, Any]]:
    messages = call.body.get("messages")
    return messages if isinstance(messages, list) else []


def _record_route(call: Call, trace: dict[str, object]) -> tuple[str, str]:
    """Keep the decision trace for the ledger; returns the `x-llmswitch-route` header that summarises it."""
    call.route = orjson.dumps(trace, option=orjson.OPT_NON_STR_KEYS).decode()
    return ("x-llmswitch-route", trace_header(trace))


async def serve_auto(
    call: Call,
    strategy: Strategy,
    routes: dict[str, ModelRoute],
    executor: Executor,
    conn: Responder,
    loop_time: float,
    target: float | None,
) -> None:
    spent = 0.0  # every candidate call counts, not just the accepted one

    async def candidate(model: str, messages: list[dict[str, Any]] | None = None) -> Answer:
        body = {k: v for k, v in call.body.items() if k not in ("stream", "stream_options")}
        if messages is not None:  # a judge's own prompt
            body["messages"] = messages
        sub = Call(
            request_id=call.request_id,
            ts=time.time(),
            started=time.perf_counter(),
            key_id=call.key_id,
            model=call.model,
            body=body,
            raw=orjson.dumps(body),
            stream=False,
            want_usage=False,
            tags=call.tags,
            surface=call.surface,
            upstream_headers=call.upstream_headers,
            route=call.route,
            parent=call,
        )
        captured = CapturedResponse()
        t0 = time.perf_counter()
        try:
            await executor.run(sub, routes[model].plan(loop_time), captured)
        finally:
            call.upstream_wait += sub.upstream_wait
        nonlocal spent
        cost_header = captured.header("x-llmswitch-cost-usd")
        cost = float(cost_header) if cost_header not in (None, "unknown") else 0.0
        spent += cost
        return Answer(
            model=model,
            text=answer_text(call.surface, captured.body),
            cost_usd=cost,
            latency_s=time.perf_counter() - t0,
            payload=captured,
        )

    decision = await strategy.route(_messages(call), target, candidate)
    route_header = _record_route(call, decision.trace)
    if decision.answer is None:  # the chosen model serves the request itself, streamed or not
        call.extra_headers.append(route_header)
        call.prior_cost = spent
        await executor.run(call, routes[decision.model].plan(loop_time), conn)
        return
    captured = decision.answer.payload
    assert isinstance(captured, CapturedResponse)
    headers = [h for h in captured.headers if h[0] != "x-llmswitch-cost-usd"]
    headers.append(route_header)
    if call.stream:
        conn.start_stream(200, headers, replay_as_stream(call.surface, captured.body, call.want_usage))
        conn.end_stream()
    else:
        conn.respond(200, [*headers, ("x-llmswitch-cost-usd", f"{spent:.10f}")], captured.body)
