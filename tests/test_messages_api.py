"""The Anthropic surface (`/v1/messages`) on every model, and Claude behind the OpenAI surface.

Clients are the official `anthropic` and `openai` SDKs; upstreams are the project's simulator speaking
OpenAI (the cheap open models) or Anthropic (`api: anthropic`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import pytest

from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import UPSTREAM_KEY, GatewayProcess, provider, request

GatewayFactory = Callable[..., GatewayProcess]

WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def config(sim: Simulator) -> dict[str, Any]:
    return {
        "providers": {
            "moonshot": provider(sim.url, pricing_provider="moonshotai"),
            "claude": {**provider(sim.url), "api": "anthropic", "pricing_provider": "anthropic"},
        },
        "models": {
            "kimi-k2": {"deployments": [{"provider": "moonshot", "model": "kimi-k2-0905-preview"}]},
            "claude-sonnet": {"deployments": [{"provider": "claude", "model": "claude-sonnet-4-5"}]},
            "claude-or-kimi": {
                "deployments": [{"provider": "claude", "model": "claude-broken@500"}],
                "fallbacks": ["kimi-k2"],
            },
        },
        "routing": {"max_attempts": 2},
    }


@pytest.fixture
def gw(fresh_sim: Simulator, start_gateway: GatewayFactory) -> GatewayProcess:
    return start_gateway(config(fresh_sim))


def ac(gw: GatewayProcess, key: str = "sk-client") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)


def last_upstream(sim: Simulator) -> dict[str, Any]:
    return sim.requests()[-1]


def test_plain_text_on_an_openai_upstream(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    fresh_sim.enqueue(
        "kimi-k2-0905-preview",
        {"content": "Bonjour!", "usage": {"prompt_tokens": 30, "completion_tokens": 2}},
    )
    raw = ac(gw).messages.with_raw_response.create(
        model="kimi-k2", max_tokens=100, messages=[{"role": "user", "content": "Say hello in French"}]
    )
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == "Bonjour!"  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (30, 2)
    assert raw.headers["x-llmswitch-provider"] == "moonshot"
    assert float(raw.headers["x-llmswitch-cost-usd"]) == pytest.approx((30 * 0.60 + 2 * 2.50) / 1e6)
    sent = last_upstream(fresh_sim)
    assert sent["path"] == "/v1/chat/completions" and sent["body"]["model"] == "kimi-k2-0905-preview"
    assert sent["body"]["max_tokens"] == 100
    [row] = gw.rows_for(raw.headers["x-llmswitch-request-id"])
    assert row["surface"] == "anthropic" and row["status"] == "ok" and row["input_tokens"] == 30


def test_system_prompt_blocks_and_multi_turn_reach_upstream(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    ac(gw).messages.create(
        model="kimi-k2",
        max_tokens=50,
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]},
        ],
        stop_sequences=["END"],
        metadata={"user_id": "user-7"},
        extra_body={"temperature": 0.2, "top_k": 5},  # this SDK version types neither
    )
    body = last_upstream(fresh_sim)["body"]
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "You are terse." in json.dumps(body["messages"][0])
    assert "What is my name?" in json.dumps(body["messages"][3])
    assert body["stop"] == ["END"] and body["temperature"] == 0.2 and body["user"] == "user-7"
    assert "cache_control" not in json.dumps(body)


def test_stream_text_and_final_message(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    for model, upstream in (("kimi-k2", "kimi-k2-0905-preview"), ("claude-sonnet", "claude-sonnet-4-5")):
        fresh_sim.enqueue(upstream, {"content": "one two three"})
        with ac(gw).messages.stream(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "count"}]
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == "one two three", model
        assert final.content[0].text == "one two three"  # type: ignore[union-attr]
        assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_tool_use_round_trip(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    c = ac(gw)
    fresh_sim.enqueue("kimi-k2-0905-preview", {"tool_arguments": {"city": "Lyon"}})
    first = c.messages.create(
        model="kimi-k2",
        max_tokens=200,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Weather in Lyon?"}],
    )
    assert first.stop_reason == "tool_use"
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Lyon"}
    sent_tools = last_upstream(fresh_sim)["body"]["tools"]
    assert sent_tools[0]["function"]["name"] == "get_weather"
    assert sent_tools[0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]
    second = c.messages.create(
        model="kimi-k2",
        max_tokens=200,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "Weather in Lyon?"},
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": use.id, "content": "rain, 12C"},
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert "rain, 12C" in second.content[0].text  # type: ignore[union-attr]
    msgs = last_upstream(fresh_sim)["body"]["messages"]
    assert msgs[1]["tool_calls"][0]["id"] == use.id
    assert msgs[2] == {"role": "tool", "tool_call_id": use.id, "content": "rain, 12C"}


def test_streamed_tool_use(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    fresh_sim.enqueue("kimi-k2-0905-preview", {"tool_arguments": {"city": "Kyoto"}})
    with ac(gw).messages.stream(
        model="kimi-k2",
        max_tokens=200,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Weather in Kyoto?"}],
    ) as stream:
        final = stream.get_final_message()
    [use] = [b for b in final.content if b.type == "tool_use"]
    assert use.input == {"city": "Kyoto"} and final.stop_reason == "tool_use"


def test_image_block_becomes_an_image_part(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    ac(gw).messages.create(
        model="kimi-k2",
        max_tokens=20,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": pixel}},
                    {"type": "text", "text": "What is this?"},
                ],
            }
        ],
    )
    parts = last_upstream(fresh_sim)["body"]["messages"][-1]["content"]
    image = next(p for p in parts if p["type"] == "image_url")
    assert image["image_url"]["url"] == f"data:image/png;base64,{pixel}"


def test_max_tokens_stop_reason(gw: GatewayProcess) -> None:
    msg = ac(gw).messages.create(
        model="kimi-k2", max_tokens=3, messages=[{"role": "user", "content": "a long answer please"}]
    )
    assert msg.stop_reason == "max_tokens"


def test_anthropic_upstream_is_passed_through_natively(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    fresh_sim.enqueue(
        "claude-sonnet-4-5",
        {"usage": {"input_tokens": 100, "output_tokens": 20, "cache_read": 1000, "cache_creation": 500}},
    )
    raw = ac(gw).messages.with_raw_response.create(
        model="claude-sonnet",
        max_tokens=30,
        system=[{"type": "text", "text": "big system", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"top_k": 3},
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    msg = raw.parse()
    assert msg.usage.cache_read_input_tokens == 1000
    seen = last_upstream(fresh_sim)
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == UPSTREAM_KEY and "authorization" not in seen["headers"]
    assert seen["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert (
        seen["headers"]["anthropic-version"] == raw.http_request.headers["anthropic-version"]
    )  # the client's
    assert seen["body"]["top_k"] == 3 and seen["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert seen["body"]["model"] == "claude-sonnet-4-5"
    [row] = gw.rows_for(raw.headers["x-llmswitch-request-id"])
    assert (row["input_tokens"], row["cached_input_tokens"], row["cache_write_tokens"]) == (1600, 1000, 500)
    # Claude Sonnet 4.5: $3 input, $0.30 cache read, $3.75 cache write, $15 output per Mtok.
    assert row["cost_usd"] == pytest.approx((100 * 3 + 1000 * 0.30 + 500 * 3.75 + 20 * 15) / 1e6)


def test_openai_client_on_an_anthropic_upstream(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    fresh_sim.enqueue(
        "claude-sonnet-4-5",
        {"usage": {"input_tokens": 10, "output_tokens": 5, "cache_read": 200, "cache_creation": 0}},
    )
    oc = client(gw)
    raw = oc.chat.completions.with_raw_response.create(
        model="claude-sonnet",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.prompt_tokens == 210
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 200
    sent = last_upstream(fresh_sim)
    assert sent["path"] == "/v1/messages" and sent["body"]["system"] == "Be brief."
    assert sent["body"]["max_tokens"] > 0 and sent["headers"]["anthropic-version"] == "2023-06-01"
    [row] = gw.rows_for(raw.headers["x-llmswitch-request-id"])
    assert row["cost_usd"] == pytest.approx((10 * 3 + 200 * 0.30 + 5 * 15) / 1e6)

    fresh_sim.enqueue("claude-sonnet-4-5", {"tool_arguments": {"city": "Oslo"}})
    stream = oc.chat.completions.create(
        model="claude-sonnet",
        stream=True,
        stream_options={"include_usage": True},
        tools=[
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": WEATHER_TOOL["input_schema"]},
            }
        ],
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    args, name, finish, usage_chunks = "", "", None, 0
    for chunk in stream:
        usage_chunks += chunk.usage is not None
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                name += (tc.function.name or "") if tc.function else ""
                args += (tc.function.arguments or "") if tc.function else ""
            finish = choice.finish_reason or finish
    assert name == "get_weather" and json.loads(args) == {"city": "Oslo"} and finish == "tool_calls"
    assert usage_chunks == 1


def test_fallback_crosses_protocols(gw: GatewayProcess) -> None:
    raw = ac(gw).messages.with_raw_response.create(
        model="claude-or-kimi", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().content[0].text.startswith("Hello from kimi-k2-0905-preview")  # type: ignore[union-attr]
    rows = gw.rows_for(raw.headers["x-llmswitch-request-id"], at_least=2)
    assert [(r["provider"], r["status"]) for r in rows] == [("claude", "error"), ("moonshot", "ok")]


def test_count_tokens(gw: GatewayProcess) -> None:
    small = ac(gw).messages.count_tokens(model="kimi-k2", messages=[{"role": "user", "content": "hi"}])
    big = ac(gw).messages.count_tokens(
        model="kimi-k2",
        messages=[{"role": "user", "content": "hello world " * 500}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert 0 < small.input_tokens < 50 and 1000 < big.input_tokens < 2000


def assert_anthropic_error(exc: anthropic.APIStatusError, status: int, kind: str) -> None:
    assert exc.status_code == status
    body: Any = exc.body
    assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["message"]


def test_error_classes_in_anthropic_shape(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    cfg = config(fresh_sim)
    cfg["auth"] = {"keys": [{"id": "dev", "key": "sk-dev-123456"}]}
    cfg["server"] = {"max_body_bytes": 5000}
    cfg["models"]["limited"] = {"deployments": [{"provider": "moonshot", "model": "busy@429"}]}
    cfg["models"]["broken"] = {"deployments": [{"provider": "moonshot", "model": "dead@500"}]}
    cfg["models"]["slow"] = {"deployments": [{"provider": "moonshot", "model": "slow@slow5"}]}
    cfg["routing"] = {"max_attempts": 2, "max_retry_after": 0.1, "timeout": 1.0}
    gw = start_gateway(cfg)
    good = ac(gw, "sk-dev-123456")
    hello: Any = [{"role": "user", "content": "hi"}]
    cases: list[tuple[Callable[[], object], int, str]] = [
        (
            lambda: ac(gw, "wrong").messages.create(model="kimi-k2", max_tokens=5, messages=hello),
            401,
            "authentication_error",
        ),
        (lambda: good.messages.create(model="nope", max_tokens=5, messages=hello), 404, "not_found_error"),
        (
            lambda: good.messages.create(model="kimi-k2", max_tokens=5, messages=[]),
            400,
            "invalid_request_error",
        ),
        (
            lambda: good.messages.create(
                model="kimi-k2", max_tokens=5, messages=[{"role": "user", "content": "x" * 6000}]
            ),
            413,
            "request_too_large",
        ),
        (
            lambda: good.messages.create(model="limited", max_tokens=5, messages=hello),
            429,
            "rate_limit_error",
        ),
        (lambda: good.messages.create(model="broken", max_tokens=5, messages=hello), 502, "api_error"),
        (lambda: good.messages.create(model="slow", max_tokens=5, messages=hello), 504, "api_error"),
    ]
    for call, status, kind in cases:
        with pytest.raises(anthropic.APIStatusError) as exc:
            call()
        assert_anthropic_error(exc.value, status, kind)
    # Missing max_tokens and malformed JSON, which the SDK would not send.
    for body in (b'{"model": "kimi-k2", "messages": [{"role": "user", "content": "x"}]}', b"{oops"):
        status, _, resp = request("POST", f"{gw.url}/v1/messages", body, {"x-api-key": "sk-dev-123456"})
        err = json.loads(resp)
        assert status == 400 and err["type"] == "error" and err["error"]["type"] == "invalid_request_error"


def test_coding_agent_request_round_trips(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    """The shape Claude Code-style agents send: big cached system blocks, many tools, history, streaming."""
    tools = [
        {
            "name": f"tool_{i}",
            "description": f"Tool number {i}. " * 20,
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "n": {"type": "integer"}},
                "required": ["path"],
            },
        }
        for i in range(18)
    ]
    system = [
        {"type": "text", "text": "You are an interactive CLI coding agent. " * 400},
        {"type": "text", "text": "Project conventions: " * 300, "cache_control": {"type": "ephemeral"}},
    ]
    history: list[Any] = [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "Fix the failing test in foo.py",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me read the file."},
                {"type": "tool_use", "id": "toolu_01", "name": "tool_3", "input": {"path": "foo.py"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": [{"type": "text", "text": "def f(): ..."}],
                },
            ],
        },
    ]
    with ac(gw).messages.stream(
        model="kimi-k2",
        max_tokens=4096,
        system=system,
        tools=tools,
        messages=history,  # type: ignore[arg-type]
        tool_choice={"type": "auto"},
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    ) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    # The simulator answers a tool result with text quoting it.
    assert final.stop_reason == "end_turn" and "def f(): ..." in final.content[0].text  # type: ignore[union-attr]
    sent = last_upstream(fresh_sim)["body"]
    assert len(sent["tools"]) == 18 and sent["stream"] is True
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool"]
    assert sent["messages"][2]["tool_calls"][0]["function"]["name"] == "tool_3"
    assert sent["messages"][3]["tool_call_id"] == "toolu_01"
    assert "Project conventions" in json.dumps(sent["messages"][0])


def test_models_list_in_both_shapes(gw: GatewayProcess) -> None:
    assert [m.id for m in ac(gw).models.list()] == ["kimi-k2", "claude-sonnet", "claude-or-kimi"]
    assert [m.id for m in client(gw).models.list()] == ["kimi-k2", "claude-sonnet", "claude-or-kimi"]


def test_upstream_client_error_crosses_protocols_in_anthropic_shape(
    gw: GatewayProcess, fresh_sim: Simulator
) -> None:
    fresh_sim.enqueue("kimi-k2-0905-preview", {"status": 400})
    with pytest.raises(anthropic.BadRequestError) as exc:
        ac(gw).messages.create(model="kimi-k2", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert_anthropic_error(exc.value, 400, "invalid_request_error")
    assert "simulated upstream error 400" in exc.value.body["error"]["message"]  # type: ignore[index]


def test_stop_sequences(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    # Native Anthropic upstream: the upstream's stop_sequence verdict passes through.
    fresh_sim.enqueue("claude-sonnet-4-5", {"content": "alpha beta STOP gamma"})
    msg = ac(gw).messages.create(
        model="claude-sonnet",
        max_tokens=50,
        stop_sequences=["STOP"],
        messages=[{"role": "user", "content": "go"}],
    )
    assert msg.content[0].text.strip() == "alpha beta"  # type: ignore[union-attr]
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == "STOP"
    # OpenAI-compatible upstream: the stop list is sent as `stop` and the answer ends there.
    fresh_sim.enqueue("kimi-k2-0905-preview", {"content": "one two END three"})
    msg = ac(gw).messages.create(
        model="kimi-k2", max_tokens=50, stop_sequences=["END"], messages=[{"role": "user", "content": "go"}]
    )
    assert last_upstream(fresh_sim)["body"]["stop"] == ["END"]
    assert "three" not in msg.content[0].text and msg.stop_reason in ("end_turn", "stop_sequence")  # type: ignore[union-attr]
    # OpenAI client on the Anthropic upstream: `stop` becomes stop_sequences, finish_reason "stop".
    fresh_sim.enqueue("claude-sonnet-4-5", {"content": "red green HALT blue"})
    completion = client(gw).chat.completions.create(
        model="claude-sonnet", stop=["HALT"], messages=[{"role": "user", "content": "colors"}]
    )
    assert last_upstream(fresh_sim)["body"]["stop_sequences"] == ["HALT"]
    assert completion.choices[0].finish_reason == "stop"
    assert "blue" not in (completion.choices[0].message.content or "")
