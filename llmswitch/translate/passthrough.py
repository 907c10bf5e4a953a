"""Anthropic client, Anthropic upstream: bytes pass through natively; usage is read on the way."""

from __future__ import annotations

from typing import Any

import orjson

from llmswitch.pricing.usage import Usage
from llmswitch.providers.exchange import BadUpstreamBody
from llmswitch.providers.openai import rewrite_body
from llmswitch.providers.sse import event_data
from llmswitch.translate._util import Json, anthropic_usage, error_message, load_object, try_object
from llmswitch.translate.errors import anthropic_error_event

# Thinking blocks translated from an OpenAI-compatible upstream carry an empty signature (no upstream can
# sign them). Sent to Anthropic (a later turn, or a fallback across protocols) they would be refused as
# invalid, so they are dropped: Anthropic ignores the thinking of earlier turns anyway.
_UNSIGNED = (b'"signature":""', b'"signature": ""')

# Events the stream forwards without parsing once it has started.
_PLAIN = (b"content_block_delta", b"content_block_start", b"content_block_stop", b"ping")


def strip_unsigned_thinking(body: Json) -> Json:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body
    out: list[Any] = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list) and m.get("role") == "assistant":
            kept = [b for b in content if not _unsigned(b)]
            m = {**m, "content": kept or [{"type": "text", "text": "(thinking omitted)"}]}
        out.append(m)
    return {**body, "messages": out}


def _unsigned(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "thinking" and not block.get("signature")


class AnthropicPassthrough:
    """Request: only `model` replaced. Answer: the upstream's bytes, untouched."""

    def upstream_body(
        self, raw: bytes, body: dict[str, Any], upstream_model: str, stream: bool, want_usage: bool
    ) -> bytes:
        if any(p in raw for p in _UNSIGNED):
            return orjson.dumps({**strip_unsigned_thinking(body), "model": upstream_model})
        return rewrite_body(raw, body, upstream_model, add_usage_option=False)

    def complete(self, raw: bytes, upstream_model: str) -> tuple[bytes, Usage | None, str]:
        data = load_object(raw, "upstream answer")
        if data.get("type") != "message" or not isinstance(data.get("content"), list):
            raise BadUpstreamBody("upstream answered 200 without a message")
        model = data.get("model")
        served = model if isinstance(model, str) and model else upstream_model
        return raw, anthropic_usage(data.get("usage")), served

    def stream(self, want_usage: bool, client_body: dict[str, Any]) -> AnthropicPassthroughStream:
        return AnthropicPassthroughStream()


class AnthropicPassthroughStream:
    """Forwards every event unchanged; parses only message_start / message_delta (usage) and the first."""

    __slots__ = ("_fields", "done", "output_events", "served_model", "started", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.served_model: str | None = None
        self.done = False
        self.output_events = 0
        self.started = False
        self._fields: Json = {}  # the latest value of each usage field: message_delta totals overwrite

    def feed(self, event: bytes) -> bytes:
        payload = event_data(event)
        if payload is None:  # comments / keep-alives
            return event + b"\n\n"
        if self.started:
            name = _event_name(event)
            if name in _PLAIN:
                self.output_events += name == b"content_block_delta"
                return event + b"\n\n"
        obj = try_object(payload)
        if obj is None:
            if not self.started:
                raise BadUpstreamBody("upstream stream is not valid SSE JSON")
            return event + b"\n\n"  # unreadable mid-stream: the client judges it
        kind = obj.get("type")
        if not self.started:
            if kind == "error":  # e.g. overloaded before any output: fail over instead of committing
                raise BadUpstreamBody(f"upstream stream error: {error_message(obj)}")
            self.started = True
        if kind == "message_start":
            msg = obj.get("message")
            if isinstance(msg, dict):
                model = msg.get("model")
                self.served_model = model if isinstance(model, str) else ""
                self._merge(msg.get("usage"))
        elif kind == "message_delta":
            self._merge(obj.get("usage"))
        elif kind == "message_stop":
            self.done = True
        elif kind == "content_block_delta":
            self.output_events += 1
        return event + b"\n\n"

    def _merge(self, u: Any) -> None:
        if isinstance(u, dict):
            self._fields.update((k, v) for k, v in u.items() if v is not None)
            self.usage = anthropic_usage(self._fields)

    def finish(self) -> bytes:
        return b""

    def error_event(self, message: str, code: str) -> bytes:
        return anthropic_error_event(message)


def _event_name(event: bytes) -> bytes:
    if event.startswith(b"event:"):
        end = event.find(b"\n")
        return event[6 : end if end >= 0 else None].strip()
    return b""
