"""An OpenAI-compatible upstream's (non-streamed) answer → an Anthropic Message.

- `model` in the answer is the model the upstream says served it (falling back to the deployment's id),
  as on the pass-through paths and in the `x-llmswitch-model` header: the client learns what answered.
- `reasoning_content` (DeepSeek, Kimi, GLM; `reasoning` on OpenRouter / vLLM) becomes a `thinking` block
  before the text, only if the client asked for thinking. Its `signature` is "": the SDK requires the
  field, no upstream can sign it, and the Anthropic pass-through drops such blocks before Claude sees them.
- `stop_sequence` is reported only when the upstream says which stop string matched (vLLM's
  `stop_reason`); OpenAI's `finish_reason: "stop"` does not tell a stop sequence from a natural end,
  so it is `end_turn` otherwise.
- Usage: Anthropic's `input_tokens` excludes cache reads, so it is prompt - cached.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmswitch.pricing.usage import Usage
from llmswitch.providers.exchange import BadUpstreamBody
from llmswitch.translate._util import (
    Json,
    anthropic_usage_json,
    error_message,
    new_id,
    openai_usage,
)


def stop_reason(finish: Any, has_tool_calls: bool, matched: Any, stops: list[str]) -> tuple[str, str | None]:
    """OpenAI finish_reason → Anthropic (stop_reason, stop_sequence)."""
    if finish == "length":
        return "max_tokens", None
    if finish in ("tool_calls", "function_call") or (has_tool_calls and finish in (None, "stop")):
        return "tool_use", None  # some servers say "stop" after tool calls
    if finish == "content_filter":
        return "refusal", None
    if isinstance(matched, str) and matched in stops:
        return "stop_sequence", matched
    return "end_turn", None


def reasoning_of(obj: Json) -> str:
    r = obj.get("reasoning_content")
    if not isinstance(r, str):
        r = obj.get("reasoning")
    return r if isinstance(r, str) else ""


def tool_use_block(call: Any) -> Json | None:
    if not isinstance(call, dict):
        return None
    fn = call.get("function")
    if not isinstance(fn, dict):
        return None
    try:
        tool_input = orjson.loads(fn.get("arguments") or "{}")
    except (orjson.JSONDecodeError, TypeError):
        tool_input = {}
    call_id = call.get("id")
    return {
        "type": "tool_use",
        "id": call_id if isinstance(call_id, str) and call_id else new_id("toolu_"),
        "name": str(fn.get("name", "")),
        "input": tool_input if isinstance(tool_input, dict) else {},  # Anthropic inputs are objects
    }


def message_answer(data: Json, served: str, thinking: bool, stops: list[str]) -> tuple[Json, Usage | None]:
    """A ChatCompletion → an Anthropic Message (first choice) and its canonical usage."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if "error" in data:
            raise BadUpstreamBody(f"upstream answered 200 with an error: {error_message(data)}")
        raise BadUpstreamBody("upstream answered 200 without choices")
    choice = choices[0]
    msg = choice.get("message")
    msg = msg if isinstance(msg, dict) else {}
    content: list[Json] = []
    reasoning = reasoning_of(msg)
    if thinking and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = msg.get("content")
    if isinstance(text, list):  # a few servers answer with parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if not text and isinstance(msg.get("refusal"), str):
        text = msg["refusal"]
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    calls = msg.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        block = tool_use_block(call)
        if block is not None:
            content.append(block)
    has_tools = any(b["type"] == "tool_use" for b in content)
    reason, seq = stop_reason(choice.get("finish_reason"), has_tools, choice.get("stop_reason"), stops)
    usage = openai_usage(data.get("usage"))
    upstream_id = data.get("id")
    return {
        "id": "msg_" + upstream_id if isinstance(upstream_id, str) and upstream_id else new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": served,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": seq,
        "usage": anthropic_usage_json(usage or Usage()),
    }, usage
