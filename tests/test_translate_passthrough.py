"""Anthropic client → Anthropic upstream: native pass-through with usage read on the way."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from llmswitch.providers.exchange import BadUpstreamBody
from llmswitch.testing import sim_behaviour as sim
from llmswitch.translate import AnthropicPassthrough
from tests.test_translate_common import an_event, anthropic_final_message, run_stream, sse_events

Json = dict[str, Any]


def test_request_bytes_pass_through_with_only_the_model_replaced() -> None:
    body = {
        "model": "claude-sonnet",
        "max_tokens": 1024,
        "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": 'héllo "quoted"', "cache_control": {"type": "ephemeral"}}
                ],
            }
        ],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "top_k": 5,
    }
    raw = json.dumps(body).encode()  # the SDK's encoding: spaces after separators
    out = AnthropicPassthrough().upstream_body(raw, body, "claude-sonnet-4-5-20250929", True, False)
    assert out == raw.replace(b'"claude-sonnet"', b'"claude-sonnet-4-5-20250929"')


def test_unsigned_thinking_from_a_translated_turn_is_dropped() -> None:
    body: Json = {
        "model": "c",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "from kimi", "signature": ""},
                    {"type": "text", "text": "Hello"},
                ],
            },
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "only", "signature": ""}]},
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "claude's", "signature": "EqQB"}],
            },
            {"role": "user", "content": "again"},
        ],
    }
    out: Json = orjson.loads(
        AnthropicPassthrough().upstream_body(json.dumps(body).encode(), body, "dep", False, False)
    )
    assert out["model"] == "dep"
    assert out["messages"][1]["content"] == [{"type": "text", "text": "Hello"}]
    assert out["messages"][2]["content"] == [{"type": "text", "text": "(thinking omitted)"}]
    assert out["messages"][3] == body["messages"][3]


def test_complete_returns_the_bytes_untouched_with_canonical_usage() -> None:
    answer = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 472,
            "cache_creation_input_tokens": 1500,
            "cache_read_input_tokens": 9000,
            "output_tokens": 89,
            "service_tier": "standard",
        },
    }
    raw = json.dumps(answer).encode()
    body, usage, served = AnthropicPassthrough().complete(raw, "dep")
    assert body is raw and served == "claude-sonnet-4-5-20250929"
    assert usage is not None
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens, usage.output_tokens) == (
        10972,
        9000,
        1500,
        89,
    )


@pytest.mark.parametrize(
    "raw", [b"<html>", b'{"type": "error", "error": {"type": "overloaded_error"}}', b'{"choices": []}']
)
def test_complete_rejects_what_is_not_a_message(raw: bytes) -> None:
    with pytest.raises(BadUpstreamBody):
        AnthropicPassthrough().complete(raw, "dep")


def claude_stream() -> list[bytes]:
    start: Json = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-4-1",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 30,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 2000,
            "output_tokens": 1,
        },
    }
    return [
        an_event("message_start", message=start),
        an_event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        an_event("ping"),
        b": comment\n\n",
        an_event("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hello"}),
        an_event("content_block_delta", index=0, delta={"type": "text_delta", "text": " world"}),
        an_event("content_block_stop", index=0),
        # Cumulative totals; input/cache fields appear when the server updates them.
        an_event(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={"output_tokens": 12, "input_tokens": 35, "cache_creation_input_tokens": 100},
        ),
        an_event("message_stop"),
    ]


def test_stream_forwards_every_event_unchanged() -> None:
    upstream = b"".join(claude_stream())
    tr = AnthropicPassthrough().stream(False, {})
    out = run_stream(tr, upstream, chunk_size=5)
    assert out == upstream
    assert tr.done and tr.served_model == "claude-opus-4-1" and tr.output_events == 2
    assert tr.usage is not None
    assert (
        tr.usage.input_tokens,
        tr.usage.cached_input_tokens,
        tr.usage.cache_write_tokens,
        tr.usage.output_tokens,
    ) == (35 + 2000 + 100, 2000, 100, 12)
    final = anthropic_final_message(out)
    assert final.content[0].text == "Hello world"  # type: ignore[union-attr]


def test_stream_from_the_simulator_with_a_tool_call() -> None:
    req = {
        "model": "claude",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
    }
    answer = sim.plan(req, {"tool_arguments": {"path": "a.py"}, "usage": {"cache_read": 7}}, anthropic=True)
    tr = AnthropicPassthrough().stream(True, req)
    out = run_stream(tr, b"".join(sim.anthropic_events(answer)))
    assert anthropic_final_message(out).content[0].input == {"path": "a.py"}  # type: ignore[union-attr]
    assert tr.usage is not None and tr.usage.cached_input_tokens == 7 and tr.done


def test_stream_failures() -> None:
    with pytest.raises(BadUpstreamBody):
        AnthropicPassthrough().stream(False, {}).feed(sim.garbage_event(True).strip())
    overloaded = an_event("error", error={"type": "overloaded_error", "message": "Overloaded"}).strip()
    with pytest.raises(BadUpstreamBody, match="Overloaded"):
        AnthropicPassthrough().stream(False, {}).feed(overloaded)
    tr = AnthropicPassthrough().stream(False, {})
    tr.feed(claude_stream()[0].strip())
    assert tr.feed(overloaded) == overloaded + b"\n\n"  # mid-stream: the client's SDK raises it
    assert tr.feed(b"event: content_block_delta\ndata: {bad") == b"event: content_block_delta\ndata: {bad\n\n"
    assert sse_events(tr.error_event("upstream stream cut", "stream_truncated")) == [
        ("error", {"type": "error", "error": {"type": "api_error", "message": "upstream stream cut"}})
    ]
    assert tr.finish() == b"" and not tr.done
