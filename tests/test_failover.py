"""Deployments, fallbacks, retries, cooldown, deadlines and mid-stream failure, on a misbehaving upstream."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import GatewayProcess, provider

GatewayFactory = Callable[..., GatewayProcess]
MESSAGES: list[Any] = [{"role": "user", "content": "hello there"}]


def two_deployments(sim: Simulator, routing: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "providers": {"a": provider(sim.url), "b": provider(sim.url)},
        "models": {
            "m": {
                "deployments": [{"provider": "a", "model": "model-a"}, {"provider": "b", "model": "model-b"}]
            },
        },
        "routing": routing or {},
    }


def upstream_models(sim: Simulator) -> list[str]:
    return [r["body"]["model"] for r in sim.requests()]


@pytest.mark.parametrize(
    ("behaviour", "error_class"),
    [
        ({"status": 500}, "http_500"),
        ({"status": 503}, "http_503"),
        ({"status": 429}, "http_429"),
        ({"reset": True}, "reset"),
        ({"garbage": True}, "bad_body"),
        ({"hang": True}, "timeout"),
    ],
)
def test_failed_first_deployment_moves_on_and_both_attempts_are_recorded(
    fresh_sim: Simulator,
    start_gateway: GatewayFactory,
    behaviour: dict[str, Any],
    error_class: str,
) -> None:
    gw = start_gateway(two_deployments(fresh_sim, {"attempt_timeout": 1.0}))
    fresh_sim.enqueue("model-a", behaviour)
    for stream in (False, True):
        if stream:
            fresh_sim.reset()
            fresh_sim.enqueue("model-a", behaviour)
        raw = client(gw).chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, stream=stream
        )
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        else:
            text = raw.parse().choices[0].message.content or ""
        assert text.startswith("Hello from model-b")
        assert raw.headers["x-llmswitch-provider"] == "b"
        assert raw.headers["x-llmswitch-attempts"] == "2"
        rows = gw.rows_for(raw.headers["x-llmswitch-request-id"], at_least=2)
        assert [(r["attempt"], r["provider"], r["status"]) for r in rows] == [
            (1, "a", "error"),
            (2, "b", "ok"),
        ]
        assert rows[0]["error_class"] == error_class
        assert upstream_models(fresh_sim) == ["model-a", "model-b"]


def test_fallback_model_serves_when_own_deployments_fail(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "providers": {"cn": provider(fresh_sim.url), "us": provider(fresh_sim.url)},
            "models": {
                "kimi-k2": {
                    "deployments": [{"provider": "cn", "model": "kimi@500"}],
                    "fallbacks": ["gpt-4.1"],
                },
                "gpt-4.1": {"deployments": [{"provider": "us", "model": "gpt-4.1"}]},
            },
            "routing": {"max_attempts": 2},
        }
    )
    raw = client(gw).chat.completions.with_raw_response.create(model="kimi-k2", messages=MESSAGES)
    assert raw.headers["x-llmswitch-model"] == "gpt-4.1"
    rows = gw.rows_for(raw.headers["x-llmswitch-request-id"], at_least=2)
    assert [(r["requested_model"], r["upstream_model"], r["status"]) for r in rows] == [
        ("kimi-k2", "kimi@500", "error"),
        ("kimi-k2", "gpt-4.1", "ok"),
    ]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_and_credential_errors_are_never_retried(
    fresh_sim: Simulator,
    start_gateway: GatewayFactory,
    status: int,
) -> None:
    gw = start_gateway(two_deployments(fresh_sim))
    fresh_sim.enqueue("model-a", {"status": status})
    with pytest.raises(openai.APIStatusError) as exc:
        client(gw).chat.completions.create(model="m", messages=MESSAGES)
    expected = 502 if status in (401, 403) else status
    assert exc.value.status_code == expected
    assert upstream_models(fresh_sim) == ["model-a"]
    body: Any = exc.value.body
    assert set(body) >= {"message", "type", "code"}
    if status in (401, 403):
        assert body["code"] == "upstream_auth_failed" and "'a'" in body["message"]
    rows = gw.ledger(at_least=1)
    assert [(r["status"], r["error_class"]) for r in rows] == [("error", f"http_{status}")]


def test_all_deployments_failing_gives_502_with_a_summary(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    cfg = two_deployments(fresh_sim, {"max_attempts": 2})
    cfg["models"]["m"]["deployments"] = [
        {"provider": "a", "model": "x@500"},
        {"provider": "b", "model": "y@reset"},
    ]
    gw = start_gateway(cfg)
    with pytest.raises(openai.APIStatusError) as exc:
        client(gw).chat.completions.create(model="m", messages=MESSAGES)
    assert exc.value.status_code == 502
    message = exc.value.body["message"]  # type: ignore[index]
    assert "a/x@500: http_500" in message and "b/y@reset: reset" in message
    assert len(gw.ledger(at_least=2)) == 2


def test_single_deployment_is_retried_after_transient_error(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "providers": {"a": provider(fresh_sim.url)},
            "models": {"m": {"deployments": [{"provider": "a", "model": "only"}]}},
        }
    )
    fresh_sim.enqueue("only", {"status": 502})
    result = client(gw).chat.completions.create(model="m", messages=MESSAGES)
    assert result.choices[0].message.content
    assert [r["status"] for r in gw.ledger(at_least=2)] == ["error", "ok"]


def test_retry_after_is_respected(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(
        {
            "providers": {"a": provider(fresh_sim.url)},
            "models": {"m": {"deployments": [{"provider": "a", "model": "only"}]}},
        }
    )
    fresh_sim.enqueue("only", {"status": 429, "retry_after": 1})
    t0 = time.monotonic()
    client(gw).chat.completions.create(model="m", messages=MESSAGES)
    assert time.monotonic() - t0 >= 1.0
    assert [r["error_class"] for r in gw.ledger(at_least=2)] == ["http_429", None]


def test_rate_limited_everywhere_gives_429_with_retry_after(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "providers": {"a": provider(fresh_sim.url)},
            "models": {"m": {"deployments": [{"provider": "a", "model": "only@429"}]}},
            "routing": {"max_attempts": 2, "max_retry_after": 0.2},
        }
    )
    with pytest.raises(openai.RateLimitError):
        client(gw).chat.completions.create(model="m", messages=MESSAGES)


def test_failing_deployment_is_cooled_down(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    cfg = two_deployments(fresh_sim, {"cooldown": {"failures": 2, "seconds": 60}})
    cfg["models"]["m"]["deployments"][0]["model"] = "flaky@500"
    gw = start_gateway(cfg)
    c = client(gw)
    for _ in range(5):
        assert c.chat.completions.create(model="m", messages=MESSAGES).choices
    # Two failures cool "a" down; the next three requests go straight to "b".
    assert upstream_models(fresh_sim) == [
        "flaky@500",
        "model-b",
        "flaky@500",
        "model-b",
        "model-b",
        "model-b",
        "model-b",
    ]


def test_overall_deadline_gives_504(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(
        {
            "providers": {"a": provider(fresh_sim.url)},
            "models": {"m": {"deployments": [{"provider": "a", "model": "slow@slow5"}]}},
            "routing": {"timeout": 0.5},
        }
    )
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as exc:
        client(gw).chat.completions.create(model="m", messages=MESSAGES)
    assert exc.value.status_code == 504
    assert time.monotonic() - t0 < 3
    [row] = gw.ledger(at_least=1)
    assert row["error_class"] == "deadline"


def test_stream_cut_midway_reaches_client_as_error_and_ledger_as_truncated(
    fresh_sim: Simulator,
    start_gateway: GatewayFactory,
) -> None:
    gw = start_gateway(two_deployments(fresh_sim))
    fresh_sim.enqueue("model-a", {"content": "one two three four five six", "cut_after": 3})
    received = ""
    with client(gw).chat.completions.with_streaming_response.create(
        model="m",
        stream=True,
        messages=MESSAGES,
    ) as resp:
        request_id = resp.headers["x-llmswitch-request-id"]
        with pytest.raises(openai.APIError, match="stream ended early"):
            for chunk in resp.parse():
                received += "".join(c.delta.content or "" for c in chunk.choices)
    assert received and "six" not in received
    [row] = gw.rows_for(request_id)  # no retry once the client has bytes
    assert row["status"] == "truncated" and row["error_class"] == "stream_cut"
    assert row["output_tokens"] and row["output_tokens"] >= 2
    assert upstream_models(fresh_sim) == ["model-a"]


def test_stream_garbage_before_first_event_fails_over(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(two_deployments(fresh_sim))
    fresh_sim.enqueue("model-a", {"garbage": True})
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client(gw).chat.completions.create(model="m", stream=True, messages=MESSAGES)
        if c.choices
    )
    assert text.startswith("Hello from model-b")


def test_stream_that_goes_silent_is_cut_by_idle_timeout(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(two_deployments(fresh_sim, {"stream_idle_timeout": 0.5}))
    fresh_sim.enqueue("model-a", {"content": "a b c", "chunk_delay": 3})
    t0 = time.monotonic()
    with pytest.raises(openai.APIError):
        for _ in client(gw).chat.completions.create(model="m", stream=True, messages=MESSAGES):
            pass
    assert time.monotonic() - t0 < 3
    [row] = gw.ledger(at_least=1)
    assert row["status"] == "truncated"
