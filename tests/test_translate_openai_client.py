"""OpenAI client → Anthropic upstream: request, answer and stream translation."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest

from llmswitch.providers.exchange import BadUpstreamBody
from llmswitch.testing import sim_behaviour as sim
from llmswitch.translate import OpenAIClientAnthropicUpstream
from tests.test_translate_common import (
    an_event,
    openai_chunks,
    openai_client,
    openai_final_completion,
    run_stream,
    sse_events,
)

Json = dict[str, Any]


def translate(body: Json, stream: bool = False) -> Json:
    ex = OpenAIClientAnthropicUpstream()
    req: Json = orjson.loads(
        ex.upstream_body(orjson.dumps(body), body, "claude-sonnet-4-5-20250929", stream, False)
    )
    assert_valid_anthropic_request(req)
    return req


def assert_valid_anthropic_request(req: Json) -> None:
    """The rules the Messages API enforces: alternating roles, non-empty text, tool_results answering the
    previous turn's tool_use ids, ids of [a-zA-Z0-9_-], max_tokens present, system top-level only."""
    assert type(req["max_tokens"]) is int and req["max_tokens"] > 0
    assert isinstance(req.get("system", ""), str)
    previous_calls: set[str] = set()
    for i, m in enumerate(req["messages"]):
        assert m["role"] in ("user", "assistant")
        if i:
            assert m["role"] != req["messages"][i - 1]["role"], "roles must alternate"
        calls = set()
        results = []
        for b in m["content"]:
            if b["type"] == "text":
                assert b["text"], "empty text blocks are refused"
            elif b["type"] == "tool_use":
                assert m["role"] == "assistant" and isinstance(b["input"], dict)
                assert b["id"].replace("_", "").replace("-", "").isalnum()
                calls.add(b["id"])
            elif b["type"] == "tool_result":
                assert m["role"] == "user"
                results.append(b["tool_use_id"])
            else:
                assert b["type"] in ("image", "document"), b
        assert set(results) <= previous_calls, "tool_result without a matching tool_use"
        previous_calls = calls
    if "temperature" in req:
        assert 0 <= req["temperature"] <= 1 and "top_p" not in req


# --- request ---------------------------------------------------------------------------------------


def test_request_scalars() -> None:
    body = {
        "model": "claude",
        "max_completion_tokens": 500,
        "max_tokens": 99,
        "temperature": 1.4,
        "top_p": 0.5,
        "stop": "###",
        "user": "user-7",
        "n": 1,
        "seed": 3,
        "presence_penalty": 0.1,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "Sys one."},
            {"role": "developer", "content": "Dev two."},
            {"role": "user", "content": "Hi"},
        ],
    }
    assert translate(body, stream=True) == {
        "model": "claude-sonnet-4-5-20250929",
        "system": "Sys one.\n\nDev two.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "max_tokens": 500,
        "temperature": 1.0,
        "stop_sequences": ["###"],
        "metadata": {"user_id": "user-7"},
        "stream": True,
    }
    minimal = translate(
        {"model": "c", "top_p": 0.8, "stop": ["a", "b"], "messages": [{"role": "user", "content": "x"}]}
    )
    assert (
        minimal["max_tokens"] == 4096 and minimal["top_p"] == 0.8 and minimal["stop_sequences"] == ["a", "b"]
    )
    assert "stream" not in minimal and "system" not in minimal


def test_images_and_parts() -> None:
    req = translate(
        {
            "model": "c",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/webp;base64,UklGRh4A", "detail": "high"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://example.com/b.jpg"}},
                        {"type": "text", "text": ""},
                    ],
                }
            ],
        }
    )
    assert req["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRh4A"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/b.jpg"}},
    ]


def test_tool_calls_results_and_merging() -> None:
    req = translate(
        {
            "model": "c",
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "user", "content": "In Celsius."},  # consecutive user messages: merged
                {
                    "role": "assistant",
                    "content": "",
                    "reasoning_content": "unsigned: dropped",
                    "tool_calls": [
                        {
                            "id": "call_abc",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "functions.get_weather:1",
                            "type": "function",  # Kimi-style id: rewritten consistently
                            "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_abc", "content": "18C"},
                {
                    "role": "tool",
                    "tool_call_id": "functions.get_weather:1",
                    "content": [{"type": "text", "text": "22C"}],
                },
                {"role": "user", "content": "Thanks! Which is warmer?"},
                {"role": "assistant", "content": [{"type": "text", "text": "Rome."}]},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Weather by city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                        "strict": True,
                    },
                },
                {"type": "function", "function": {"name": "now"}},
            ],
            "tool_choice": "required",
            "parallel_tool_calls": False,
        }
    )
    assert req["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "text", "text": "In Celsius."},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"city": "Paris"}},
                {
                    "type": "tool_use",
                    "id": "functions_get_weather_1",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_abc", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "functions_get_weather_1", "content": "22C"},
                {"type": "text", "text": "Thanks! Which is warmer?"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Rome."}]},
    ]
    assert req["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather by city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert req["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "now"}}, None, {"type": "tool", "name": "now"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, expected: Json | None) -> None:
    body: Json = {
        "model": "c",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}],
    }
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert translate(body).get("tool_choice") == expected


def test_response_format_becomes_a_system_instruction() -> None:
    req = translate(
        {
            "model": "c",
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": "You extract data."},
                {"role": "user", "content": "Name: Ada"},
            ],
        }
    )
    assert req["system"].startswith("You extract data.\n\nRespond only with a single valid JSON object")
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    req = translate(
        {
            "model": "c",
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
        }
    )
    assert req["system"].endswith(orjson.dumps(schema).decode())


def test_unparseable_arguments_are_kept() -> None:
    req = translate(
        {
            "model": "c",
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": ""},
            ],
        }
    )
    assert req["messages"][1]["content"][0]["input"] == {"arguments": "{oops"}
    assert req["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "c1"}]


# --- answer (non-streamed) -------------------------------------------------------------------------

CLAUDE_ANSWER = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Need the weather.", "signature": "EqQBCkYIARgCIkD"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
        {"type": "text", "text": "Let me check "},
        {"type": "text", "text": "that."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "unit": "celsius"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 472,
        "cache_creation_input_tokens": 1500,
        "cache_read_input_tokens": 9000,
        "output_tokens": 89,
    },
}


def complete(answer: Json) -> tuple[Json, Any, str]:
    ex = OpenAIClientAnthropicUpstream()
    raw, usage, served = ex.complete(orjson.dumps(answer), "claude-dep")
    openai.types.chat.ChatCompletion.model_validate_json(raw)
    return orjson.loads(raw), usage, served


def test_answer() -> None:
    data, usage, served = complete(CLAUDE_ANSWER)
    assert served == "claude-sonnet-4-5-20250929" and data["model"] == served
    assert data["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL" and data["object"] == "chat.completion"
    assert data["choices"] == [
        {
            "index": 0,
            "logprobs": None,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "Let me check that.",
                "refusal": None,
                "reasoning_content": "Need the weather.",
                "tool_calls": [
                    {
                        "id": "toolu_01A09q90qw90lq917835lq9",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"location":"San Francisco, CA","unit":"celsius"}',
                        },
                    }
                ],
            },
        }
    ]
    assert data["usage"] == {
        "prompt_tokens": 10972,
        "completion_tokens": 89,
        "total_tokens": 11061,
        "prompt_tokens_details": {"cached_tokens": 9000},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens, usage.output_tokens) == (
        10972,
        9000,
        1500,
        89,
    )
    got = openai_client(orjson.dumps(data)).chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "x"}]
    )
    assert got.choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index,union-attr]
    assert got.usage.prompt_tokens_details.cached_tokens == 9000  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        (None, "stop"),
    ],
)
def test_finish_reasons(reason: str | None, finish: str) -> None:
    data, _, _ = complete(
        {**CLAUDE_ANSWER, "content": [{"type": "text", "text": "ok"}], "stop_reason": reason}
    )
    assert data["choices"][0]["finish_reason"] == finish
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "ok", "refusal": None}


@pytest.mark.parametrize(
    "raw",
    [
        b"nope",
        b'{"type": "message"}',
        b'{"type": "error", "error": {"type": "overloaded_error", "message": "x"}}',
    ],
)
def test_unreadable_answers(raw: bytes) -> None:
    with pytest.raises(BadUpstreamBody):
        OpenAIClientAnthropicUpstream().complete(raw, "dep")


# --- stream ----------------------------------------------------------------------------------------


def claude_stream() -> bytes:
    start = {k: v for k, v in CLAUDE_ANSWER.items() if k not in ("content", "usage")}
    start.update(
        content=[],
        stop_reason=None,
        usage={
            "input_tokens": 472,
            "cache_creation_input_tokens": 1500,
            "cache_read_input_tokens": 9000,
            "output_tokens": 1,
        },
    )
    tool = {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {}}
    return b"".join(
        [
            an_event("message_start", message=start),
            an_event(
                "content_block_start",
                index=0,
                content_block={"type": "thinking", "thinking": "", "signature": ""},
            ),
            an_event("ping"),
            an_event(
                "content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Need the "}
            ),
            an_event(
                "content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "weather."}
            ),
            an_event(
                "content_block_delta",
                index=0,
                delta={"type": "signature_delta", "signature": "EqQBCkYIARgCIkD"},
            ),
            an_event("content_block_stop", index=0),
            an_event("content_block_start", index=1, content_block={"type": "text", "text": ""}),
            an_event("content_block_delta", index=1, delta={"type": "text_delta", "text": "Let me check "}),
            an_event("content_block_delta", index=1, delta={"type": "text_delta", "text": "that."}),
            an_event("content_block_stop", index=1),
            an_event("content_block_start", index=2, content_block=tool),
            an_event("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": ""}),
            an_event(
                "content_block_delta",
                index=2,
                delta={"type": "input_json_delta", "partial_json": '{"location":'},
            ),
            an_event(
                "content_block_delta",
                index=2,
                delta={"type": "input_json_delta", "partial_json": ' "San Francisco, CA"}'},
            ),
            an_event("content_block_stop", index=2),
            an_event(
                "message_delta",
                delta={"stop_reason": "tool_use", "stop_sequence": None},
                usage={"output_tokens": 89},
            ),
            an_event("message_stop"),
        ]
    )


@pytest.mark.parametrize("want_usage", [True, False])
def test_stream(want_usage: bool) -> None:
    tr = OpenAIClientAnthropicUpstream().stream(want_usage, {"model": "claude"})
    out = run_stream(tr, claude_stream())
    events = [d for _, d in sse_events(out)]
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in chunks]
    assert deltas[:7] == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "Need the "},
        {"reasoning_content": "weather."},
        {"content": "Let me check "},
        {"content": "that."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]},
    ]
    assert chunks[8]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    usage_chunks = [c for c in chunks if not c["choices"]]
    assert len(usage_chunks) == (1 if want_usage else 0)
    if want_usage:
        assert usage_chunks[0]["usage"]["prompt_tokens"] == 10972
        assert usage_chunks[0]["usage"]["completion_tokens"] == 89
        assert usage_chunks[0]["usage"]["prompt_tokens_details"] == {"cached_tokens": 9000}
    assert all(c["model"] == "claude-sonnet-4-5-20250929" and c["id"] == CLAUDE_ANSWER["id"] for c in chunks)
    assert tr.done and tr.served_model == "claude-sonnet-4-5-20250929" and tr.finish() == b""
    assert tr.usage is not None
    assert (
        tr.usage.input_tokens,
        tr.usage.cached_input_tokens,
        tr.usage.cache_write_tokens,
        tr.usage.output_tokens,
    ) == (10972, 9000, 1500, 89)
    assert tr.output_events == 7

    for chunk in openai_chunks(out):  # every chunk parses as the SDK's ChatCompletionChunk
        assert chunk.object == "chat.completion.chunk"
    final = openai_final_completion(out)  # the SDK's own accumulator
    msg = final.choices[0].message
    assert msg.content == "Let me check that." and final.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls is not None and msg.tool_calls[0].id == "toolu_01A09q90qw90lq917835lq9"
    assert msg.tool_calls[0].function.arguments == '{"location": "San Francisco, CA"}'
    assert (final.usage is not None) == want_usage


def test_stream_from_the_simulator_with_stop_sequence() -> None:
    body = {
        "model": "claude",
        "stream": True,
        "stop": ["world"],
        "messages": [{"role": "user", "content": "x"}],
    }
    ex = OpenAIClientAnthropicUpstream()
    req = orjson.loads(ex.upstream_body(orjson.dumps(body), body, "claude-haiku", True, True))
    answer = sim.plan(req, {"content": "hello big world"}, anthropic=True)
    tr = ex.stream(True, body)
    final = openai_final_completion(run_stream(tr, b"".join(sim.anthropic_events(answer))))
    assert final.choices[0].message.content == "hello big " and final.choices[0].finish_reason == "stop"
    assert final.usage is not None and final.usage.completion_tokens == 2


def test_stream_failures() -> None:
    ex = OpenAIClientAnthropicUpstream()
    with pytest.raises(BadUpstreamBody):
        ex.stream(False, {}).feed(b"event: message_start\ndata: <html>oops</html>")
    with pytest.raises(BadUpstreamBody, match="Overloaded"):
        ex.stream(False, {}).feed(
            an_event("error", error={"type": "overloaded_error", "message": "Overloaded"}).strip()
        )
    with pytest.raises(BadUpstreamBody):
        ex.stream(False, {}).feed(an_event("content_block_stop", index=0).strip())
    tr = ex.stream(False, {})
    assert tr.feed(an_event("ping").strip()) == b""  # nothing to commit yet
    assert tr.feed(claude_stream().split(b"\n\n")[0]).startswith(b"data: {")
    mid = tr.feed(an_event("error", error={"type": "overloaded_error", "message": "Overloaded"}).strip())
    assert orjson.loads(mid[6:])["error"]["message"] == "Overloaded"
    cut = tr.error_event("upstream stream cut", "stream_truncated")
    assert orjson.loads(cut[6:]) == {
        "error": {
            "message": "upstream stream cut",
            "type": "upstream_error",
            "param": None,
            "code": "stream_truncated",
        }
    }
    fresh = ex.stream(False, {})
    out = fresh.feed(claude_stream().split(b"\n\n")[0]) + fresh.error_event("upstream stream cut", "x")
    with pytest.raises(openai.APIError, match="upstream stream cut"):
        openai_final_completion(out)  # the SDK raises the in-band error
