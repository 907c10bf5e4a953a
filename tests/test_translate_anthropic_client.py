"""Anthropic client → OpenAI-compatible upstream: request, answer and stream translation."""

from __future__ import annotations

from typing import Any

import anthropic
import orjson
import pytest
from pydantic import TypeAdapter

from llmswitch.providers.exchange import BadUpstreamBody
from llmswitch.testing import sim_behaviour as sim
from llmswitch.translate import AnthropicClientOpenAIUpstream, BadClientBody, check_messages_body
from tests.test_translate_common import (
    an_event,
    anthropic_client,
    anthropic_final_message,
    oa_chunk,
    run_stream,
    sse_events,
)

Json = dict[str, Any]
EVENT = TypeAdapter(anthropic.types.RawMessageStreamEvent)


def translate(body: Json, stream: bool = False) -> tuple[AnthropicClientOpenAIUpstream, Json]:
    ex = AnthropicClientOpenAIUpstream()
    out = ex.upstream_body(orjson.dumps(body), body, "kimi-k2-0905", stream, False)
    req = orjson.loads(out)
    assert_valid_openai_request(req)
    return ex, req


def assert_valid_openai_request(req: Json) -> None:
    """The rules OpenAI-compatible servers enforce: roles, content shapes, tool messages right after the
    assistant message that made the calls, one per call id."""
    pending: set[str] = set()
    for m in req["messages"]:
        role = m["role"]
        assert role in ("system", "user", "assistant", "tool"), m
        if role == "tool":
            assert m["tool_call_id"] in pending, ("orphan tool message", m)
            pending.discard(m["tool_call_id"])
            assert isinstance(m["content"], str)
            continue
        assert not pending, ("tool calls without results before", m)
        if role == "assistant":
            assert isinstance(m["content"], str) or (m["content"] is None and m.get("tool_calls"))
            for call in m.get("tool_calls", []):
                assert call["type"] == "function" and call["id"]
                assert isinstance(orjson.loads(call["function"]["arguments"]), dict)
                pending.add(call["id"])
        elif isinstance(m["content"], list):
            for part in m["content"]:
                assert part["type"] in ("text", "image_url", "file"), part
        else:
            assert isinstance(m["content"], str)
    assert "cache_control" not in orjson.dumps(req).decode()
    assert "top_k" not in req and "thinking" not in req and "system" not in req


# --- request ---------------------------------------------------------------------------------------


def test_request_scalars() -> None:
    body = {
        "model": "kimi-k2",
        "max_tokens": 1024,
        "system": "Be terse.",
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["\n\nHuman:", "END"],
        "metadata": {"user_id": "u-42"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "stream": True,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    ex, req = translate(body, stream=True)
    assert req == {
        "model": "kimi-k2-0905",
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 1024,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["\n\nHuman:", "END"],
        "user": "u-42",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert ex.thinking and ex.stops == ["\n\nHuman:", "END"]
    _, plain = translate({**body, "stream": False, "thinking": {"type": "disabled"}})
    assert "stream" not in plain and "stream_options" not in plain


def test_system_blocks_are_joined_and_cache_control_dropped() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be careful.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>x</system-reminder>"},
                    {"type": "text", "text": "fix the bug", "cache_control": {"type": "ephemeral"}},
                ],
            }
        ],
    }
    _, req = translate(body)
    assert req["messages"] == [
        {"role": "system", "content": "You are Claude Code.\n\nBe careful."},
        {"role": "user", "content": "<system-reminder>x</system-reminder>\nfix the bug"},
    ]


def test_images_become_image_url_parts() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {"type": "text", "text": "What is in these?"},
                ],
            }
        ],
    }
    _, req = translate(body)
    assert req["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "What is in these?"},
    ]


def test_tool_use_and_results_keep_their_order() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "What's the weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": "Two cities: two calls.",
                        "signature": "EqQBCkYIARgCIkD",
                    },
                    {"type": "text", "text": "Checking both."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01A",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "(also: use Celsius)",
                    },  # text BEFORE the results: must move after
                    {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18°C, cloudy"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01B",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "timeout"},
                            {"type": "text", "text": "retry later"},
                        ],
                    },
                ],
            },
        ],
    }
    _, req = translate(body)
    assert req["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Checking both.",
            "reasoning_content": "Two cities: two calls.",
            "tool_calls": [
                {
                    "id": "toolu_01A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_01B",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "18°C, cloudy"},
        {"role": "tool", "tool_call_id": "toolu_01B", "content": "Error: timeout\nretry later"},
        {"role": "user", "content": "(also: use Celsius)"},
    ]


def test_tool_result_images_follow_as_a_user_message() -> None:
    png = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}}
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "screenshot please"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "done"}, png],
                    }
                ],
            },
        ],
    }
    _, req = translate(body)
    assert req["messages"][1]["content"] is None
    assert req["messages"][2] == {"role": "tool", "tool_call_id": "t1", "content": "done"}
    assert req["messages"][3]["role"] == "user"
    assert req["messages"][3]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0K"},
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "Read"},
            {"tool_choice": {"type": "function", "function": {"name": "Read"}}},
        ),
        (
            {"type": "auto", "disable_parallel_tool_use": True},
            {"tool_choice": "auto", "parallel_tool_calls": False},
        ),
        (None, {}),
    ],
)
def test_tools_and_tool_choice(choice: Json | None, expected: Json) -> None:
    tools = [
        {
            "name": "Read",
            "description": "Read a file",
            "cache_control": {"type": "ephemeral"},
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},  # server tool: dropped
    ]
    body: Json = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "tools": tools,
    }
    if choice is not None:
        body["tool_choice"] = choice
    _, req = translate(body)
    assert req["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "Read",
                "description": "Read a file",
                "parameters": {
                    "type": "object",
                    "properties": {"path": {"type": "string"}},
                    "required": ["path"],
                },
            },
        }
    ]
    assert {k: req[k] for k in ("tool_choice", "parallel_tool_calls") if k in req} == expected


def test_check_messages_body() -> None:
    ok = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    assert check_messages_body(ok) is None
    assert "max_tokens" in (check_messages_body({**ok, "max_tokens": None}) or "")
    assert "messages" in (check_messages_body({**ok, "messages": []}) or "")
    assert "role" in (check_messages_body({**ok, "messages": [{"role": "system", "content": "x"}]}) or "")
    assert "model" in (check_messages_body({**ok, "model": ""}) or "")
    with pytest.raises(BadClientBody):
        translate({"model": "m", "messages": "nope"})


# --- answer (non-streamed) -------------------------------------------------------------------------

DEEPSEEK_ANSWER: Json = {
    "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e",
    "object": "chat.completion",
    "created": 1736000000,
    "model": "deepseek-reasoner",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "I'll read it.",
                "reasoning_content": "The user wants the file.",
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_0_8f3b",
                        "type": "function",
                        "function": {"name": "Read", "arguments": '{"path": "src/app.py"}'},
                    },
                    {
                        "index": 1,
                        "id": "",
                        "type": "function",
                        "function": {"name": "Bash", "arguments": "{not json"},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 85,
        "total_tokens": 1285,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "prompt_cache_hit_tokens": 1024,
        "prompt_cache_miss_tokens": 176,
        "completion_tokens_details": {"reasoning_tokens": 40},
    },
    "system_fingerprint": "fp_7e0991cad4",
}


def complete(answer: Json, body: Json | None = None) -> tuple[Json, Any, str]:
    ex, _ = translate(
        body
        or {
            "model": "deepseek-r1",
            "max_tokens": 9,
            "thinking": {"type": "enabled"},
            "messages": [{"role": "user", "content": "read app.py"}],
        }
    )
    raw, usage, served = ex.complete(orjson.dumps(answer), "deepseek-reasoner-dep")
    anthropic.types.Message.model_validate_json(raw)  # the official SDK's own type accepts it
    return orjson.loads(raw), usage, served


def test_answer_with_thinking_text_and_tool_calls() -> None:
    msg, usage, served = complete(DEEPSEEK_ANSWER)
    assert served == "deepseek-reasoner"
    assert msg["id"] == "msg_930c60df-bf64-41c9-a88e-3ec75f81e00e"
    assert msg["model"] == "deepseek-reasoner" and msg["type"] == "message" and msg["role"] == "assistant"
    assert msg["content"][:3] == [
        {"type": "thinking", "thinking": "The user wants the file.", "signature": ""},
        {"type": "text", "text": "I'll read it."},
        {"type": "tool_use", "id": "call_0_8f3b", "name": "Read", "input": {"path": "src/app.py"}},
    ]
    bash = msg["content"][3]
    assert bash["name"] == "Bash" and bash["input"] == {} and bash["id"].startswith("toolu_")
    assert msg["stop_reason"] == "tool_use" and msg["stop_sequence"] is None
    assert msg["usage"] == {
        "input_tokens": 176,
        "output_tokens": 85,
        "cache_read_input_tokens": 1024,
        "cache_creation_input_tokens": 0,
    }
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_tokens) == (
        1200,
        1024,
        85,
        40,
    )


def test_reasoning_is_dropped_unless_thinking_was_asked() -> None:
    msg, _, _ = complete(
        DEEPSEEK_ANSWER, {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]}
    )
    assert [b["type"] for b in msg["content"]] == ["text", "tool_use", "tool_use"]


@pytest.mark.parametrize(
    ("finish", "extra", "reason", "seq"),
    [
        ("stop", {}, "end_turn", None),
        ("length", {}, "max_tokens", None),
        ("tool_calls", {}, "tool_use", None),
        ("content_filter", {}, "refusal", None),
        ("stop", {"stop_reason": "END"}, "stop_sequence", "END"),  # vLLM names the stop string
        ("stop", {"stop_reason": 128009}, "end_turn", None),  # …or the stop token id
        (None, {}, "end_turn", None),
    ],
)
def test_stop_reasons(finish: str | None, extra: Json, reason: str, seq: str | None) -> None:
    answer = {
        "id": "x",
        "model": "qwen3",
        "choices": [
            {"index": 0, "finish_reason": finish, **extra, "message": {"role": "assistant", "content": "ok"}}
        ],
    }
    body = {
        "model": "m",
        "max_tokens": 9,
        "stop_sequences": ["END"],
        "messages": [{"role": "user", "content": "x"}],
    }
    msg, usage, _ = complete(answer, body)
    assert (msg["stop_reason"], msg["stop_sequence"]) == (reason, seq)
    assert usage is None and msg["usage"]["input_tokens"] == 0


def test_moonshot_top_level_cached_tokens() -> None:
    answer = {
        "id": "c",
        "model": "kimi-k2",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 500, "completion_tokens": 3, "total_tokens": 503, "cached_tokens": 300},
    }
    msg, usage, _ = complete(answer)
    assert msg["usage"]["input_tokens"] == 200 and msg["usage"]["cache_read_input_tokens"] == 300
    assert usage.cached_input_tokens == 300


def test_sdk_parses_the_translated_answer() -> None:
    msg, _, _ = complete(DEEPSEEK_ANSWER)
    client = anthropic_client(orjson.dumps(msg))
    got = client.messages.create(
        model="deepseek-r1", max_tokens=9, messages=[{"role": "user", "content": "x"}]
    )
    assert got.content[2].type == "tool_use" and got.content[2].input == {"path": "src/app.py"}
    assert got.usage.cache_read_input_tokens == 1024


@pytest.mark.parametrize(
    "raw",
    [b"<html>oops</html>", b"[]", b'{"object": "chat.completion"}', b'{"error": {"message": "overloaded"}}'],
)
def test_unreadable_answers_are_bad_upstream_bodies(raw: bytes) -> None:
    ex, _ = translate({"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]})
    with pytest.raises(BadUpstreamBody):
        ex.complete(raw, "dep")


# --- stream ----------------------------------------------------------------------------------------


def deepseek_stream(usage_in_finish_chunk: bool = False) -> bytes:
    """A DeepSeek-style stream: reasoning, text, two parallel tool calls in fragments, usage last."""
    usage = DEEPSEEK_ANSWER["usage"]
    call0 = {
        "index": 0,
        "id": "call_0_8f3b",
        "type": "function",
        "function": {"name": "Read", "arguments": ""},
    }
    call1 = {
        "index": 1,
        "id": "call_1_c2d0",
        "type": "function",
        "function": {"name": "Grep", "arguments": ""},
    }
    return b"".join(
        [
            oa_chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
            b": keep-alive\n\n",
            oa_chunk({"content": None, "reasoning_content": "The user "}),
            oa_chunk({"content": None, "reasoning_content": "wants the file."}),
            oa_chunk({"content": "I'll ", "reasoning_content": None}),
            oa_chunk({"content": "read it."}),
            oa_chunk({"tool_calls": [call0]}),
            oa_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path": '}}]}),
            oa_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"src/app.py"}'}}]}),
            oa_chunk({"tool_calls": [call1]}),
            oa_chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"pattern": "TODO"}'}}]}),
            oa_chunk({"content": ""}, "tool_calls", usage=usage if usage_in_finish_chunk else None),
            b"" if usage_in_finish_chunk else oa_chunk(choices=False, usage=usage),
            b"data: [DONE]\n\n",
        ]
    )


def stream_translate(upstream: bytes, body: Json) -> tuple[bytes, Any]:
    ex = AnthropicClientOpenAIUpstream()
    translator = ex.stream(False, body)
    out = run_stream(translator, upstream)
    for name, data in sse_events(out):
        assert name == data["type"]
        if name == "ping":  # not in the SDK's event union: its stream skips pings
            assert data == {"type": "ping"}
        else:
            EVENT.validate_python(data)  # each event is a valid RawMessageStreamEvent
    return out, translator


THINKING_BODY = {
    "model": "deepseek-r1",
    "max_tokens": 9,
    "stream": True,
    "thinking": {"type": "enabled"},
    "messages": [{"role": "user", "content": "read app.py"}],
}


@pytest.mark.parametrize("usage_in_finish_chunk", [False, True])
def test_stream_grammar_with_thinking(usage_in_finish_chunk: bool) -> None:
    out, tr = stream_translate(deepseek_stream(usage_in_finish_chunk), THINKING_BODY)
    events = sse_events(out)
    shape = [
        (d["type"], d.get("index"), (d.get("delta") or d.get("content_block") or {}).get("type"))
        for _, d in events
    ]
    assert shape == [
        ("message_start", None, None),
        ("ping", None, None),
        ("ping", None, None),  # the upstream's keep-alive comment
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("content_block_start", 3, "tool_use"),
        ("content_block_delta", 3, "input_json_delta"),
        ("content_block_stop", 3, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    starts = [d for _, d in events if d["type"] == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2, 3]
    assert starts[0]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert starts[2]["content_block"] == {
        "type": "tool_use",
        "id": "call_0_8f3b",
        "name": "Read",
        "input": {},
    }
    assert events[0][1]["message"]["model"] == "deepseek-reasoner"
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"] == {
        "input_tokens": 176,
        "output_tokens": 85,
        "cache_read_input_tokens": 1024,
        "cache_creation_input_tokens": 0,
    }
    assert tr.done and tr.served_model == "deepseek-reasoner"
    assert (tr.usage.input_tokens, tr.usage.cached_input_tokens, tr.usage.output_tokens) == (1200, 1024, 85)
    assert tr.output_events == 7
    assert tr.finish() == b""  # closing events were sent once, at [DONE]

    final = anthropic_final_message(out)  # the SDK's own accumulator
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert final.content[0].thinking == "The user wants the file."  # type: ignore[union-attr]
    assert final.content[1].text == "I'll read it."  # type: ignore[union-attr]
    assert final.content[2].input == {"path": "src/app.py"}  # type: ignore[union-attr]
    assert final.content[3].input == {"pattern": "TODO"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (
        176,
        1024,
        85,
    )


def test_stream_without_thinking_drops_reasoning() -> None:
    body = {**THINKING_BODY, "thinking": {"type": "disabled"}}
    out, tr = stream_translate(deepseek_stream(), body)
    final = anthropic_final_message(out)
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert b"thinking" not in out
    assert tr.output_events == 7  # reasoning is still output the upstream bills


def test_stream_text_only_from_the_simulator_with_stop_and_finish_without_done() -> None:
    body = {
        "model": "glm-4.6",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    ex = AnthropicClientOpenAIUpstream()
    req = orjson.loads(ex.upstream_body(orjson.dumps(body), body, "glm-4.6", True, False))
    answer = sim.plan(req, {"content": "Hello there, how are you?"}, anthropic=False)
    events = sim.openai_events(answer, include_usage=True)
    assert events[-1] == b"data: [DONE]\n\n"
    tr = ex.stream(False, body)
    out = run_stream(tr, b"".join(events[:-1]))  # the server just closes: finish() ends the message
    assert not tr.done
    final = anthropic_final_message(out)
    assert final.content[0].text == "Hello there, how are you?"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 5


def test_stream_length_stop() -> None:
    upstream = (
        oa_chunk({"role": "assistant", "content": "a b"}) + oa_chunk({}, "length") + b"data: [DONE]\n\n"
    )
    out, _ = stream_translate(upstream, {"model": "m", "max_tokens": 2, "messages": []})
    assert anthropic_final_message(out).stop_reason == "max_tokens"


def test_stream_failures() -> None:
    ex = AnthropicClientOpenAIUpstream()
    body = {"model": "m", "max_tokens": 9, "messages": []}
    with pytest.raises(BadUpstreamBody):
        ex.stream(False, body).feed(b"data: <html>oops</html>")
    with pytest.raises(BadUpstreamBody):
        ex.stream(False, body).feed(b'data: {"error": {"message": "rate limited", "code": 429}}')
    with pytest.raises(BadUpstreamBody):
        ex.stream(False, body).feed(b"data: [DONE]")
    tr = ex.stream(False, body)
    assert tr.feed(b": OPENROUTER PROCESSING") == b""  # nothing to commit before the first chunk
    assert tr.feed(oa_chunk({"role": "assistant", "content": "Hel"}).strip()).startswith(
        b"event: message_start"
    )
    assert tr.feed(b"data: {garbage") == b""  # unreadable mid-stream: skipped
    err = tr.feed(b'data: {"error": {"message": "upstream died"}}')
    assert sse_events(err) == [
        ("error", {"type": "error", "error": {"type": "api_error", "message": "upstream died"}})
    ]
    cut = tr.error_event("upstream stream cut", "stream_truncated")
    assert cut == (
        b'event: error\ndata: {"type":"error","error":{"type":"api_error",'
        b'"message":"upstream stream cut"}}\n\n'
    )


def test_error_event_mid_stream_is_raised_by_the_sdk() -> None:
    tr = AnthropicClientOpenAIUpstream().stream(False, {"model": "m"})
    out = tr.feed(oa_chunk({"role": "assistant", "content": "partial"}).strip())
    out += tr.error_event("upstream stream cut", "stream_truncated")
    with pytest.raises(anthropic.APIStatusError, match="upstream stream cut"):
        anthropic_final_message(out)


def test_event_helper_matches_anthropic_framing() -> None:
    assert an_event("ping") == b'event: ping\ndata: {"type":"ping"}\n\n'
