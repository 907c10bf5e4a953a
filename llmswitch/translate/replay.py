"""A complete answer re-sent as a stream, for clients that asked to stream an answer we already hold
(an `auto` cascade decides on whole answers, then streams the accepted one)."""

from __future__ import annotations

from typing import Any

import orjson


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def replay_as_stream(surface: str, body: bytes, want_usage: bool) -> bytes:
    """The SSE events of `surface` that carry the answer `body` (that surface's non-streamed answer)."""
    answer: dict[str, Any] = orjson.loads(body)
    return _anthropic_events(answer) if surface == "anthropic" else _openai_chunks(answer, want_usage)


def _openai_chunks(answer: dict[str, Any], want_usage: bool) -> bytes:
    base = {k: answer.get(k) for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    out = []
    for choice in answer.get("choices") or []:
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{**tc, "index": i} for i, tc in enumerate(message["tool_calls"])]
        index = choice.get("index", 0)
        out.append(_sse({**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}))
        finish = choice.get("finish_reason") or "stop"
        out.append(_sse({**base, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]}))
    if want_usage and answer.get("usage"):
        out.append(_sse({**base, "choices": [], "usage": answer["usage"]}))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def _anthropic_events(answer: dict[str, Any]) -> bytes:
    usage = answer.get("usage") or {}
    start = {
        **answer,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 0},
    }
    out = [_sse({"type": "message_start", "message": start}, "message_start")]
    for i, block in enumerate(answer.get("content") or []):
        kind = block.get("type")
        if kind == "text":
            out.append(
                _sse(
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": ""},
                    },
                    "content_block_start",
                )
            )
            delta: dict[str, Any] = {"type": "text_delta", "text": block.get("text", "")}
        elif kind == "tool_use":
            out.append(
                _sse(
                    {"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}},
                    "content_block_start",
                )
            )
            delta = {
                "type": "input_json_delta",
                "partial_json": orjson.dumps(block.get("input", {})).decode(),
            }
        elif kind == "thinking":
            out.append(
                _sse(
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    },
                    "content_block_start",
                )
            )
            delta = {"type": "thinking_delta", "thinking": block.get("thinking", "")}
        else:
            continue
        out.append(_sse({"type": "content_block_delta", "index": i, "delta": delta}, "content_block_delta"))
        out.append(_sse({"type": "content_block_stop", "index": i}, "content_block_stop"))
    out.append(
        _sse(
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": answer.get("stop_reason"),
                    "stop_sequence": answer.get("stop_sequence"),
                },
                "usage": {"output_tokens": usage.get("output_tokens", 0)},
            },
            "message_delta",
        )
    )
    out.append(_sse({"type": "message_stop"}, "message_stop"))
    return b"".join(out)
