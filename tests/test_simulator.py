"""The upstream simulator, exercised through the official OpenAI and Anthropic SDKs."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from llmswitch.testing.simulator import Simulator

MESSAGES: Any = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(sim: Simulator) -> None:
    sim.reset()


@pytest.fixture
def oa(sim: Simulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.url + "/v1", api_key="sk-test", max_retries=0, timeout=5)


@pytest.fixture
def an(sim: Simulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.url, api_key="sk-ant-test", max_retries=0, timeout=5)


def _post(url: str, body: Any) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_plain_completion(oa: openai.OpenAI) -> None:
    r = oa.chat.completions.create(model="gpt-sim", messages=MESSAGES)
    assert r.model == "gpt-sim" and r.object == "chat.completion" and r.id.startswith("chatcmpl-sim-")
    content = r.choices[0].message.content
    assert content == "Hello from gpt-sim! You said: What is the capital of France?"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert r.usage.prompt_tokens == len(MESSAGES[0]["content"]) // 4
    assert r.usage.completion_tokens == len(content.split())
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_n_max_tokens_stop_json(oa: openai.OpenAI) -> None:
    r = oa.chat.completions.create(model="m", messages=MESSAGES, n=2, max_tokens=3)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[1].message.content == "Hello from m!" and r.choices[1].finish_reason == "length"
    r = oa.chat.completions.create(model="m", messages=MESSAGES, stop=["!"])
    assert r.choices[0].message.content == "Hello from m" and r.choices[0].finish_reason == "stop"
    r = oa.chat.completions.create(model="m", messages=MESSAGES, response_format={"type": "json_object"})
    assert "answer" in json.loads(r.choices[0].message.content or "")


def test_stream_usage_only_when_asked(oa: openai.OpenAI) -> None:
    chunks = list(oa.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.usage is None and c.choices for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Hello from m! You said: What is the capital of France?"
    assert chunks[-1].choices[0].finish_reason == "stop"

    chunks = list(
        oa.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == len(text.split())
    assert all(c.usage is None for c in chunks[:-1])


def test_tool_call_stream_reassembles(sim: Simulator, oa: openai.OpenAI) -> None:
    sim.enqueue("m", {"tool_arguments": {"city": "Paris", "unit": "celsius"}})
    stream = oa.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL], stream=True)
    name, args, finish, pieces = "", "", None, 0
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            assert call.index == 0 and call.function is not None
            name += call.function.name or ""
            args += call.function.arguments or ""
            pieces += bool(call.function.arguments)
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather" and finish == "tool_calls" and pieces >= 2
    assert json.loads(args) == {"city": "Paris", "unit": "celsius"}

    # non-stream: tool call, then the tool result is answered with text
    r = oa.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    tc = r.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert r.choices[0].message.content is None and r.choices[0].finish_reason == "tool_calls"
    follow: Any = [
        *MESSAGES,
        {
            "role": "assistant",
            "tool_calls": [{"id": tc.id, "type": "function", "function": {"name": "x", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": tc.id, "content": "22C and sunny"},
    ]
    r = oa.chat.completions.create(model="m", messages=follow, tools=[WEATHER_TOOL])
    assert r.choices[0].message.content == "Tool said: 22C and sunny"


def test_enqueued_500_then_success(sim: Simulator, oa: openai.OpenAI) -> None:
    sim.enqueue("m", {"status": 500})
    with pytest.raises(openai.InternalServerError):
        oa.chat.completions.create(model="m", messages=MESSAGES)
    assert oa.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content


def test_wildcard_queue_via_http_and_retry_after(sim: Simulator, oa: openai.OpenAI) -> None:
    assert _post(sim.url + "/_sim/enqueue", {"model": "*", "behaviours": [{"status": 429, "retry_after": 7}]})
    with pytest.raises(openai.RateLimitError) as err:
        oa.chat.completions.create(model="any", messages=MESSAGES)
    assert err.value.response.headers["retry-after"] == "7"


def test_reset_raises_connection_error(sim: Simulator, oa: openai.OpenAI) -> None:
    sim.enqueue("m", {"reset": True})
    with pytest.raises(openai.APIConnectionError):
        oa.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.APIConnectionError):  # static directive
        oa.chat.completions.create(model="m@reset", messages=MESSAGES)


def test_cut_after_breaks_stream(sim: Simulator, oa: openai.OpenAI) -> None:
    sim.enqueue("m", {"cut_after": 2})
    got = []
    with pytest.raises(Exception):  # noqa: B017 - httpx's incomplete-body error surfaces as-is
        for chunk in oa.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            got.append(chunk)
    assert len(got) == 2


def test_static_directives(oa: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        oa.chat.completions.create(model="qwen@500", messages=MESSAGES)
    with pytest.raises(ValueError):  # the SDK's JSON decode fails
        oa.chat.completions.create(model="x@garbage", messages=MESSAGES)
    with pytest.raises(ValueError):
        list(oa.chat.completions.create(model="x@garbage", messages=MESSAGES, stream=True))
    t0 = time.monotonic()
    oa.chat.completions.create(model="x@slow0.3", messages=MESSAGES)
    assert time.monotonic() - t0 >= 0.3


def test_hang_times_out(sim: Simulator, oa: openai.OpenAI) -> None:
    sim.enqueue("m", {"hang": True})
    with pytest.raises(openai.APITimeoutError):
        oa.with_options(timeout=0.3).chat.completions.create(model="m", messages=MESSAGES)


def test_request_log(sim: Simulator, oa: openai.OpenAI) -> None:
    oa.chat.completions.create(model="m", messages=MESSAGES, temperature=0.5)
    [req] = sim.requests()
    assert req["method"] == "POST" and req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == "Bearer sk-test"
    assert req["body"]["temperature"] == 0.5 and json.loads(req["raw_body"]) == req["body"]
    with urllib.request.urlopen(sim.url + "/_sim/requests", timeout=5) as resp:
        assert json.loads(resp.read())["requests"] == [req]


def test_keep_alive_and_malformed_json(sim: Simulator) -> None:
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
        req = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
        chunked = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunked += b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        s.sendall(req % (len(body), body) + chunked + req % (5, b"{oops"))  # pipelined on one connection
        data = b""
        while data.count(b"HTTP/1.1") < 3 or not data.endswith(b"}"):
            data += s.recv(65536)
    assert data.startswith(b"HTTP/1.1 200 ") and b'"type":"message"' in data
    assert b"HTTP/1.1 400 Bad Request" in data
    assert b"not valid JSON" in data


def test_anthropic_create_and_stream(sim: Simulator, an: anthropic.Anthropic) -> None:
    msgs: Any = [{"role": "user", "content": "Bonjour"}]
    m = an.messages.create(model="claude-sim", max_tokens=100, messages=msgs)
    assert m.type == "message" and m.stop_reason == "end_turn" and m.id.startswith("msg_sim")
    assert m.content[0].type == "text" and m.content[0].text == "Hello from claude-sim! You said: Bonjour"
    assert m.usage.input_tokens == 1 and m.usage.output_tokens == 6

    with an.messages.stream(model="claude-sim", max_tokens=2, messages=msgs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from" and final.stop_reason == "max_tokens" and final.usage.output_tokens == 2

    sim.enqueue("claude-sim", {"tool_arguments": {"q": "x"}, "usage": {"cache_read": 5}})
    tool: Any = {"name": "search", "input_schema": {"type": "object"}}
    with an.messages.stream(model="claude-sim", max_tokens=100, messages=msgs, tools=[tool]) as stream:
        final = stream.get_final_message()
    block = final.content[0]
    assert block.type == "tool_use" and block.name == "search" and block.input == {"q": "x"}
    assert final.stop_reason == "tool_use" and final.usage.cache_read_input_tokens == 5

    sim.enqueue("claude-sim", {"status": 529})
    with pytest.raises(anthropic.APIStatusError) as err:
        an.messages.create(model="claude-sim", max_tokens=100, messages=msgs)
    assert err.value.status_code == 529 and err.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
