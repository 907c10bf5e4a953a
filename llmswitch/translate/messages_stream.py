"""An Anthropic upstream's event stream → OpenAI chat.completion.chunk events.

A role chunk first (on message_start), then content / reasoning_content / tool_calls deltas (a tool call's
first chunk has its index, id and name, later ones argument fragments), the finish chunk (on
message_delta), then on message_stop the usage chunk (`choices: []`, only if the client asked for it with
`stream_options.include_usage`) and `data: [DONE]`.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from llmswitch.pricing.usage import Usage
from llmswitch.providers.exchange import BadUpstreamBody
from llmswitch.providers.sse import event_data
from llmswitch.translate._util import (
    Json,
    anthropic_usage,
    data_event,
    error_message,
    new_id,
    openai_usage_json,
    try_object,
)
from llmswitch.translate.errors import openai_error_event
from llmswitch.translate.messages_answer import finish_reason

_DONE = b"data: [DONE]\n\n"


class MessagesToChatStream:
    __slots__ = (
        "_base", "_closed", "_fields", "_finished", "_prefix", "_started", "_stop_reason", "_tools",
        "done", "output_events", "served_model", "usage", "want_usage",
    )  # fmt: skip

    def __init__(self, want_usage: bool) -> None:
        self.want_usage = want_usage
        self.usage: Usage | None = None
        self.served_model: str | None = None
        self.done = False
        self.output_events = 0
        self._started = False
        self._closed = False
        self._finished = False  # the finish chunk was sent
        self._stop_reason: Any = None
        self._fields: Json = {}  # latest value of each Anthropic usage field (message_delta overwrites)
        self._tools: dict[int, int] = {}  # content block index → OpenAI tool_calls index
        self._base: Json = {}
        self._prefix = b""  # the chunk's bytes up to its delta: the same for every chunk

    def feed(self, event: bytes) -> bytes:
        payload = event_data(event)
        if payload is None:  # comments are valid OpenAI SSE too
            return event + b"\n\n" if self._started else b""
        obj = try_object(payload)
        if obj is None:
            if not self._started:
                raise BadUpstreamBody("upstream stream is not valid SSE JSON")
            return b""
        kind = obj.get("type")
        if not self._started and kind != "message_start":
            if kind == "ping":
                return b""
            if kind == "error":  # e.g. overloaded before any output: fail over instead
                raise BadUpstreamBody(f"upstream stream error: {error_message(obj)}")
            raise BadUpstreamBody(f"upstream stream began with {kind!r}, not message_start")
        if kind == "content_block_delta":
            return self._delta(obj)
        if kind == "message_start":
            return self._start(obj.get("message"))
        if kind == "content_block_start":
            return self._block_start(obj)
        if kind == "message_delta":
            self._merge(obj.get("usage"))
            delta = obj.get("delta")
            self._stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            return self._finish_chunk()
        if kind == "message_stop":
            self.done = True
            return self._close()
        if kind == "error":
            return openai_error_event(error_message(obj), "upstream_error")
        return b""  # ping, content_block_stop, and event types added later

    def _start(self, msg: Any) -> bytes:
        msg = msg if isinstance(msg, dict) else {}
        self._started = True
        model = msg.get("model")
        self.served_model = model if isinstance(model, str) else ""
        self._merge(msg.get("usage"))
        upstream_id = msg.get("id")
        self._base = {
            "id": upstream_id if isinstance(upstream_id, str) and upstream_id else new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.served_model,
        }
        self._prefix = b"data: " + orjson.dumps(self._base)[:-1] + b',"choices":[{"index":0,"delta":'
        return self._chunk(b'{"role":"assistant","content":""}')

    def _chunk(self, delta: bytes, finish: bytes = b"null") -> bytes:
        return self._prefix + delta + b',"logprobs":null,"finish_reason":' + finish + b"}]}\n\n"

    def _block_start(self, obj: Json) -> bytes:
        block = obj.get("content_block")
        index = obj.get("index")
        if not isinstance(block, dict) or type(index) is not int:
            return b""
        if block.get("type") == "tool_use":
            n = self._tools[index] = len(self._tools)
            tool_input = block.get("input")
            # The input is normally {} here and streamed as input_json_delta; a few servers send it whole.
            args = orjson.dumps(tool_input).decode() if isinstance(tool_input, dict) and tool_input else ""
            call = {
                "index": n,
                "id": str(block.get("id", "")),
                "type": "function",
                "function": {"name": str(block.get("name", "")), "arguments": args},
            }
            self.output_events += 1
            return self._chunk(b'{"tool_calls":[' + orjson.dumps(call) + b"]}")
        if block.get("type") == "text" and block.get("text"):
            self.output_events += 1
            return self._chunk(b'{"content":' + orjson.dumps(block["text"]) + b"}")
        return b""

    def _delta(self, obj: Json) -> bytes:
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            return b""
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str):
            self.output_events += 1
            return self._chunk(b'{"content":' + orjson.dumps(delta["text"]) + b"}")
        if kind == "input_json_delta":
            n = self._tools.get(obj.get("index", -1))
            partial = delta.get("partial_json")
            if n is None or not isinstance(partial, str) or not partial:
                return b""
            self.output_events += 1
            args = orjson.dumps(partial)
            call = b'{"index":' + str(n).encode() + b',"function":{"arguments":' + args + b"}}"
            return self._chunk(b'{"tool_calls":[' + call + b"]}")
        if kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
            self.output_events += 1
            return self._chunk(b'{"reasoning_content":' + orjson.dumps(delta["thinking"]) + b"}")
        return b""  # signature_delta, citations_delta: no OpenAI equivalent

    def _merge(self, u: Any) -> None:
        if isinstance(u, dict):
            self._fields.update((k, v) for k, v in u.items() if v is not None)
            self.usage = anthropic_usage(self._fields)

    def _finish_chunk(self) -> bytes:
        if self._finished or not self._started:
            return b""
        self._finished = True
        return self._chunk(b"{}", b'"' + finish_reason(self._stop_reason).encode() + b'"')

    def _close(self) -> bytes:
        if self._closed or not self._started:
            return b""
        self._closed = True
        out = self._finish_chunk()
        if self.want_usage:
            usage = openai_usage_json(self.usage or Usage())
            out += data_event({**self._base, "choices": [], "usage": usage})
        return out + _DONE

    def finish(self) -> bytes:
        """The closing chunks, if message_stop did not already send them."""
        return self._close()

    def error_event(self, message: str, code: str) -> bytes:
        return openai_error_event(message, code)
