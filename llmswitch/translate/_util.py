"""Small helpers shared by the translators: JSON, SSE framing, ids, token counts, usage shapes."""

from __future__ import annotations

import re
import secrets
from typing import Any

import orjson

from llmswitch.pricing.usage import Usage
from llmswitch.providers.exchange import BadUpstreamBody
from llmswitch.providers.openai import parse_usage

Json = dict[str, Any]


def load_object(raw: bytes, what: str) -> Json:
    """`raw` as a JSON object, or `BadUpstreamBody` (a 200 we cannot read is retryable like a 5xx)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadUpstreamBody(f"{what} is not JSON") from None
    if not isinstance(obj, dict):
        raise BadUpstreamBody(f"{what} is not a JSON object")
    return obj


def try_object(payload: bytes) -> Json | None:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def count(v: Any) -> int:
    return v if type(v) is int and v > 0 else 0


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def dump(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def anthropic_event(kind: str, data: Json) -> bytes:
    """One Anthropic SSE event: the `event:` name repeats the payload's `type`, as the API does."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def data_event(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def error_message(obj: Json) -> str:
    """The message of an error payload: OpenAI's `{"error": {...}}` or Anthropic's `{"type": "error"}`."""
    err = obj.get("error")
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return str(err["message"])
    if isinstance(err, str):
        return err
    return "upstream reported an error"


_TOOL_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]")


def anthropic_tool_id(v: Any) -> str:
    """A tool-use id Anthropic accepts (^[a-zA-Z0-9_-]+$): Kimi's `functions.read:0` would be refused.

    Deterministic, so a tool_use and its tool_result still match after the rewrite."""
    if not isinstance(v, str) or not v:
        return new_id("toolu_")
    return _TOOL_ID_BAD.sub("_", v)


def text_of(content: Any, sep: str = "\n") -> str:
    """The text of a content value: a string, or the `text` of each part/block, joined by `sep`."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return sep.join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))


# --- usage ------------------------------------------------------------------------------------


def openai_usage(u: Any) -> Usage | None:
    """OpenAI-style usage; also Moonshot's top-level `cached_tokens`, which `parse_usage` does not read."""
    usage = parse_usage(u)
    if usage is not None and not usage.cached_input_tokens and isinstance(u, dict):
        usage.cached_input_tokens = min(count(u.get("cached_tokens")), usage.input_tokens)
    return usage


def anthropic_usage(u: Any) -> Usage | None:
    """Anthropic usage → canonical: Anthropic's input_tokens EXCLUDES cache reads and writes."""
    if not isinstance(u, dict):
        return None
    read = count(u.get("cache_read_input_tokens"))
    write = count(u.get("cache_creation_input_tokens"))
    details = u.get("output_tokens_details")
    return Usage(
        input_tokens=count(u.get("input_tokens")) + read + write,
        cached_input_tokens=read,
        cache_write_tokens=write,
        output_tokens=count(u.get("output_tokens")),
        reasoning_tokens=count(details.get("thinking_tokens")) if isinstance(details, dict) else 0,
    )


def anthropic_usage_json(u: Usage) -> Json:
    """Canonical usage → Anthropic's shape (input_tokens without cached reads and writes)."""
    fresh = max(0, u.input_tokens - u.cached_input_tokens - u.cache_write_tokens)
    return {
        "input_tokens": fresh,
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_input_tokens,
    }


def openai_usage_json(u: Usage) -> Json:
    """Canonical usage → OpenAI's shape (prompt_tokens include cached reads and writes)."""
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def wants_thinking(body: Json) -> bool:
    """Did an Anthropic client ask for thinking (`{"type": "enabled" | "adaptive", ...}`)?"""
    t = body.get("thinking")
    return isinstance(t, dict) and t.get("type") not in (None, "disabled")
