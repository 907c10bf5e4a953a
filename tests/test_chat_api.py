"""The OpenAI surface, through a real gateway process, with the official SDK as the client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from llmswitch.testing.simulator import Simulator
from tests.conftest import async_client, client
from tests.harness import UPSTREAM_KEY, GatewayProcess, provider, request

GatewayFactory = Callable[..., GatewayProcess]

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def basic_config(sim: Simulator) -> dict[str, Any]:
    return {
        "providers": {"cheap": provider(sim.url, region="CN")},
        "models": {
            "deepseek-v3": {
                "deployments": [
                    {
                        "provider": "cheap",
                        "model": "deepseek-chat",
                        "price": {"input": 0.27, "output": 1.10, "cached_input": 0.07},
                    },
                ]
            },
        },
    }


@pytest.fixture
def gw(fresh_sim: Simulator, start_gateway: GatewayFactory) -> GatewayProcess:
    return start_gateway(basic_config(fresh_sim))


def test_non_streaming_completion_is_priced_recorded_and_labelled(
    gw: GatewayProcess, fresh_sim: Simulator
) -> None:
    fresh_sim.enqueue(
        "deepseek-chat",
        {
            "content": "Paris.",
            "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "cached_tokens": 1000},
        },
    )
    raw = client(gw).chat.completions.with_raw_response.create(
        model="deepseek-v3",
        messages=[{"role": "user", "content": "Capital of France?"}],
        extra_headers={"x-llmswitch-tags": "team=search,env=prod"},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Paris."
    assert completion.usage is not None and completion.usage.prompt_tokens == 1200
    expected = (200 * 0.27 + 1000 * 0.07 + 300 * 1.10) / 1e6
    assert raw.headers["x-llmswitch-provider"] == "cheap"
    assert raw.headers["x-llmswitch-model"] == "deepseek-chat"
    assert float(raw.headers["x-llmswitch-cost-usd"]) == pytest.approx(expected, rel=1e-6)
    request_id = raw.headers["x-llmswitch-request-id"]
    [row] = gw.rows_for(request_id)
    assert row["status"] == "ok" and row["attempt"] == 1 and row["streamed"] == 0
    assert (row["provider"], row["upstream_model"], row["requested_model"]) == (
        "cheap",
        "deepseek-chat",
        "deepseek-v3",
    )
    assert (row["input_tokens"], row["cached_input_tokens"], row["output_tokens"]) == (1200, 1000, 300)
    assert row["cost_usd"] == pytest.approx(expected, rel=1e-9)
    assert json.loads(row["tags"]) == {"team": "search", "env": "prod"}
    assert row["latency_ms"] > 0 and row["http_status"] == 200


def test_every_openai_field_passes_through_and_only_model_changes(
    gw: GatewayProcess, fresh_sim: Simulator
) -> None:
    body: dict[str, Any] = {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.3,
        "top_p": 0.9,
        "n": 2,
        "seed": 7,
        "stop": ["\n\n"],
        "user": "u-42",
        "logprobs": True,
        "top_logprobs": 2,
        "max_tokens": 50,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logit_bias": {"50256": -100},
        "response_format": {"type": "json_object"},
        "tools": TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "metadata": {"k": "v"},
    }
    result = client(gw).chat.completions.create(
        model="deepseek-v3", extra_body={"vendor_extension": {"x": 1}}, **body
    )
    assert result.choices
    [seen] = fresh_sim.requests()
    sent = seen["body"]
    assert sent["model"] == "deepseek-chat"
    for key, value in body.items():
        assert sent[key] == value, key
    assert sent["vendor_extension"] == {"x": 1}
    assert seen["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "stream_options" not in sent


def test_n_choices_and_json_mode(gw: GatewayProcess) -> None:
    result = client(gw).chat.completions.create(
        model="deepseek-v3",
        n=2,
        response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Give JSON"}],
    )
    assert len(result.choices) == 2
    assert isinstance(json.loads(result.choices[0].message.content or ""), dict)


def test_stream_without_usage_request_hides_usage_but_ledger_prices_it(
    gw: GatewayProcess, fresh_sim: Simulator
) -> None:
    fresh_sim.enqueue(
        "deepseek-chat",
        {"content": "one two three four", "usage": {"prompt_tokens": 40, "completion_tokens": 4}},
    )
    with client(gw).chat.completions.with_streaming_response.create(
        model="deepseek-v3",
        stream=True,
        messages=[{"role": "user", "content": "count"}],
    ) as resp:
        request_id = resp.headers["x-llmswitch-request-id"]
        assert resp.headers["x-llmswitch-provider"] == "cheap"
        chunks = list(resp.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert all(c.usage is None for c in chunks), "usage chunk must not reach a client that did not ask"
    assert fresh_sim.requests()[0]["body"]["stream_options"] == {"include_usage": True}
    [row] = gw.rows_for(request_id)
    assert row["status"] == "ok" and row["streamed"] == 1
    assert (row["input_tokens"], row["output_tokens"]) == (40, 4)
    assert row["cost_usd"] == pytest.approx((40 * 0.27 + 4 * 1.10) / 1e6)
    assert row["ttft_ms"] is not None and 0 < row["ttft_ms"] <= row["latency_ms"]


def test_stream_with_usage_request_forwards_usage_chunk(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    fresh_sim.enqueue("deepseek-chat", {"usage": {"prompt_tokens": 12, "completion_tokens": 5}})
    chunks = list(
        client(gw).chat.completions.create(
            model="deepseek-v3",
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "hello"}],
        )
    )
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0].choices == []
    assert usage_chunks[0].usage is not None and usage_chunks[0].usage.completion_tokens == 5


def test_streamed_tool_call_reassembles(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    fresh_sim.enqueue("deepseek-chat", {"tool_arguments": {"city": "Paris"}})
    stream = client(gw).chat.completions.create(
        model="deepseek-v3",
        stream=True,
        tools=TOOLS,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    name, args, finish = "", "", None
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                name += (tc.function.name or "") if tc.function else ""
                args += (tc.function.arguments or "") if tc.function else ""
            finish = choice.finish_reason or finish
    assert name == "get_weather" and json.loads(args) == {"city": "Paris"} and finish == "tool_calls"


def test_tool_round_trip_non_streaming(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    c = client(gw)
    fresh_sim.enqueue("deepseek-chat", {"tool_arguments": {"city": "Oslo"}})
    first = c.chat.completions.create(
        model="deepseek-v3",
        tools=TOOLS,
        tool_choice="auto",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    call = first.choices[0].message.tool_calls
    assert call and call[0].function.name == "get_weather"
    assert json.loads(call[0].function.arguments) == {"city": "Oslo"}
    second = c.chat.completions.create(
        model="deepseek-v3",
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [call[0].model_dump()]},
            {"role": "tool", "tool_call_id": call[0].id, "content": "sunny, 21C"},
        ],
    )
    assert "sunny, 21C" in (second.choices[0].message.content or "")


def test_async_client_streaming_and_not(gw: GatewayProcess) -> None:
    async def go() -> tuple[str, str]:
        ac = async_client(gw)
        plain = await ac.chat.completions.create(
            model="deepseek-v3", messages=[{"role": "user", "content": "a"}]
        )
        text = ""
        async for chunk in await ac.chat.completions.create(
            model="deepseek-v3", stream=True, messages=[{"role": "user", "content": "b"}]
        ):
            text += "".join(ch.delta.content or "" for ch in chunk.choices)
        await ac.close()
        return plain.choices[0].message.content or "", text

    plain, streamed = asyncio.run(go())
    assert plain.startswith("Hello from deepseek-chat") and streamed.startswith("Hello from deepseek-chat")


def test_concurrent_requests_each_get_their_own_answer(gw: GatewayProcess) -> None:
    async def go() -> list[str]:
        ac = async_client(gw)
        results = await asyncio.gather(
            *[
                ac.chat.completions.create(
                    model="deepseek-v3", messages=[{"role": "user", "content": f"msg {i}"}]
                )
                for i in range(40)
            ]
        )
        await ac.close()
        return [r.choices[0].message.content or "" for r in results]

    answers = asyncio.run(go())
    assert all(a.endswith(f"msg {i}") for i, a in enumerate(answers))
    assert len({r["request_id"] for r in gw.ledger(at_least=40)}) == 40


def test_models_health_and_metrics(gw: GatewayProcess) -> None:
    models = client(gw).models.list()
    assert [m.id for m in models.data] == ["deepseek-v3"]
    assert json.loads(request("GET", f"{gw.url}/health")[2]) == {"status": "ok"}
    client(gw).chat.completions.create(model="deepseek-v3", messages=[{"role": "user", "content": "x"}])
    metrics = request("GET", f"{gw.url}/metrics")[2].decode()
    for name in (
        "llmswitch_requests_total",
        "llmswitch_request_duration_seconds_bucket",
        "llmswitch_gateway_overhead_seconds_bucket",
        "llmswitch_tokens_total",
        "llmswitch_cost_usd_total",
    ):
        assert name in metrics, name
    assert 'llmswitch_requests_total{model="deepseek-v3",status="200",surface="openai"} 1.0' in metrics


def test_deployment_clamps_max_tokens(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    cfg = basic_config(fresh_sim)
    cfg["models"]["deepseek-v3"]["deployments"][0]["max_output_tokens"] = 8192
    gw = start_gateway(cfg)
    c = client(gw)
    c.chat.completions.create(
        model="deepseek-v3", max_tokens=32000, messages=[{"role": "user", "content": "x"}]
    )
    c.chat.completions.create(
        model="deepseek-v3", max_tokens=100, messages=[{"role": "user", "content": "y"}]
    )
    assert [r["body"]["max_tokens"] for r in fresh_sim.requests()] == [8192, 100]


def test_an_upstreams_model_name_cannot_inject_headers(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    evil = "deepseek-chat\r\nset-cookie: session=stolen\x00é"
    fresh_sim.enqueue("deepseek-chat", {"model": evil}, {"model": evil})
    raw = client(gw).chat.completions.with_raw_response.create(
        model="deepseek-v3", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.parse().choices
    assert "set-cookie" not in raw.headers
    assert raw.headers["x-llmswitch-model"] == "deepseek-chat??set-cookie: session=stolen??"
    with client(gw).chat.completions.with_streaming_response.create(
        model="deepseek-v3", stream=True, messages=[{"role": "user", "content": "x"}]
    ) as resp:
        list(resp.parse())
        assert "set-cookie" not in resp.headers
    [row] = gw.rows_for(raw.headers["x-llmswitch-request-id"])
    assert row["upstream_model"] == evil  # the ledger keeps what the upstream said
