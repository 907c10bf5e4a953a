"""The executor's fast path: a request sent on a kept-alive upstream connection and finished on callbacks.

Each test first makes one request, so deployment `a` has a pooled connection and the request under test
takes the fast path; failures must then read exactly as on the async path (test_failover.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import GatewayProcess
from tests.raw_http import Wire
from tests.test_failover import MESSAGES, two_deployments, upstream_models

GatewayFactory = Callable[..., GatewayProcess]


def warmed(sim: Simulator, start_gateway: GatewayFactory, routing: dict[str, Any]) -> GatewayProcess:
    """A gateway whose deployment `a` holds a kept-alive connection, with a clean upstream log."""
    gw = start_gateway(two_deployments(sim, routing))
    first = client(gw).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert first.headers["x-llmswitch-provider"] == "a"
    sim.reset()
    return gw


@pytest.mark.parametrize(
    ("behaviour", "error_class"),
    [
        ({"status": 500}, "http_500"),
        ({"status": 429}, "http_429"),
        ({"garbage": True}, "bad_body"),
        ({"hang": True}, "timeout"),
    ],
)
def test_a_failure_on_a_pooled_connection_fails_over_like_the_async_path(
    fresh_sim: Simulator, start_gateway: GatewayFactory, behaviour: dict[str, Any], error_class: str
) -> None:
    gw = warmed(fresh_sim, start_gateway, {"attempt_timeout": 1.0})
    fresh_sim.enqueue("model-a", behaviour)
    raw = client(gw).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert (raw.parse().choices[0].message.content or "").startswith("Hello from model-b")
    assert raw.headers["x-llmswitch-provider"] == "b"
    assert raw.headers["x-llmswitch-attempts"] == "2"
    rows = gw.rows_for(raw.headers["x-llmswitch-request-id"], at_least=2)
    assert [(r["attempt"], r["provider"], r["status"], r["error_class"]) for r in rows] == [
        (1, "a", "error", error_class),
        (2, "b", "ok", None),
    ]
    assert upstream_models(fresh_sim) == ["model-a", "model-b"]


def test_a_client_error_on_a_pooled_connection_is_final(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = warmed(fresh_sim, start_gateway, {})
    fresh_sim.enqueue("model-a", {"status": 400})
    with pytest.raises(openai.BadRequestError) as exc:
        client(gw).chat.completions.create(model="m", messages=MESSAGES)
    assert exc.value.response.headers["x-llmswitch-request-id"]
    assert upstream_models(fresh_sim) == ["model-a"]
    rows = gw.rows_for(exc.value.response.headers["x-llmswitch-request-id"])
    assert [(r["status"], r["error_class"]) for r in rows] == [("error", "http_400")]


def test_a_reset_before_any_answer_byte_is_resent_once_on_a_new_connection(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    # A kept-alive connection the upstream closed looks exactly like this: the request is sent again,
    # as the async path's pool does, and the client sees one attempt.
    gw = warmed(fresh_sim, start_gateway, {})
    fresh_sim.enqueue("model-a", {"reset": True})
    raw = client(gw).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert raw.headers["x-llmswitch-provider"] == "a"
    assert raw.headers["x-llmswitch-attempts"] == "1"
    rows = gw.rows_for(raw.headers["x-llmswitch-request-id"])
    assert [(r["attempt"], r["status"]) for r in rows] == [(1, "ok")]
    assert upstream_models(fresh_sim) == ["model-a", "model-a"]


def test_a_client_leaving_a_pooled_request_is_booked_and_the_gateway_goes_on(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = warmed(fresh_sim, start_gateway, {"attempt_timeout": 30.0})
    fresh_sim.enqueue("model-a", {"hang": True})
    body = json.dumps({"model": "m", "messages": MESSAGES}).encode()
    with Wire(gw.url) as w:
        w.send(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-client\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )
        end = time.monotonic() + 5
        while not fresh_sim.requests() and time.monotonic() < end:
            time.sleep(0.02)
        assert upstream_models(fresh_sim) == ["model-a"]
    end = time.monotonic() + 5
    while time.monotonic() < end:
        rows = [r for r in gw.ledger() if r["error_class"] == "client_closed"]
        if rows:
            break
        time.sleep(0.05)
    assert [(r["provider"], r["status"], r["attempt"]) for r in rows] == [("a", "error", 1)]
    again = client(gw).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert again.headers["x-llmswitch-provider"] == "a"
