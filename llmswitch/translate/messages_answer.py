"""An Anthropic upstream's (non-streamed) Message → an OpenAI ChatCompletion.

- Text blocks are concatenated into `message.content`; `tool_use` blocks become `tool_calls` (arguments
  as a JSON string); `thinking` blocks become `reasoning_content` (the DeepSeek convention);
  `redacted_thinking` and server-tool blocks have no OpenAI equivalent and are dropped.
- stop_reason: end_turn / stop_sequence / pause_turn → stop, max_tokens and
  model_context_window_exceeded → length, tool_use → tool_calls, refusal → content_filter.
- Usage: prompt_tokens = input + cache reads + cache writes, cached_tokens = cache reads; the canonical
  Usage keeps cache writes apart so they are priced at their own rate.
- `model` is the model the upstream says served the request.
"""

from __future__ import annotations

import time
from typing import Any

from llmswitch.pricing.usage import Usage
from llmswitch.providers.exchange import BadUpstreamBody
from llmswitch.translate._util import Json, anthropic_usage, dump, error_message, new_id, openai_usage_json

FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def chat_answer(data: Json, served: str) -> tuple[Json, Usage | None]:
    """An Anthropic Message → a ChatCompletion and its canonical usage."""
    if data.get("type") == "error":
        raise BadUpstreamBody(f"upstream answered 200 with an error: {error_message(data)}")
    content = data.get("content")
    if not isinstance(content, list):
        raise BadUpstreamBody("upstream answered 200 without a message")
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[Json] = []
    for b in content:
        if not isinstance(b, dict):
            continue
        kind = b.get("type")
        if kind == "text" and isinstance(b.get("text"), str):
            texts.append(b["text"])
        elif kind == "tool_use":
            tool_input = b.get("input")
            calls.append(
                {
                    "id": str(b.get("id") or new_id("call_")),
                    "type": "function",
                    "function": {
                        "name": str(b.get("name", "")),
                        "arguments": dump(tool_input if tool_input is not None else {}),
                    },
                }
            )
        elif kind == "thinking" and isinstance(b.get("thinking"), str):
            thoughts.append(b["thinking"])
    message: Json = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "\n\n".join(thoughts)
    usage = anthropic_usage(data.get("usage"))
    upstream_id = data.get("id")
    answer: Json = {
        "id": upstream_id if isinstance(upstream_id, str) and upstream_id else new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": served,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(data.get("stop_reason")),
            }
        ],
        "usage": openai_usage_json(usage or Usage()),
    }
    return answer, usage
