"""An OpenAI-compatible upstream's chunk stream → Anthropic's streaming event grammar.

message_start, ping, then per content block content_block_start → content_block_delta… →
content_block_stop (thinking, text and tool_use blocks, indices in order), then message_delta (stop
reason and final usage) and message_stop. OpenAI sends usage in a chunk after the finish_reason one, so
the message_delta is held until `[DONE]` (or `finish()` if a server ends cleanly without it).

Only choice 0 is translated (Anthropic has no `n`). Parallel tool calls are assumed to stream one after
another, as every known server does; a late fragment of an earlier call is still sent to its block index.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmswitch.pricing.usage import Usage
from llmswitch.providers.exchange import BadUpstreamBody
from llmswitch.providers.sse import event_data
from llmswitch.translate._util import (
    Json,
    anthropic_event,
    anthropic_usage_json,
    error_message,
    new_id,
    openai_usage,
    try_object,
)
from llmswitch.translate.chat_answer import reasoning_of, stop_reason
from llmswitch.translate.errors import anthropic_error_event

_PING = anthropic_event("ping", {"type": "ping"})


def _delta(index: int, delta: bytes) -> bytes:
    """A content_block_delta, built as bytes: the hot path of every stream."""
    return (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
        + str(index).encode()
        + b',"delta":'
        + delta
        + b"}\n\n"
    )


class ChatToMessagesStream:
    __slots__ = (
        "_block", "_closed", "_finish", "_kind", "_matched", "_model", "_next", "_started", "_stops",
        "_thinking", "_tools", "done", "output_events", "served_model", "usage",
    )  # fmt: skip

    def __init__(self, thinking: bool, stops: list[str], client_model: str) -> None:
        self._thinking = thinking  # show reasoning_content as thinking blocks
        self._stops = stops
        self._model = client_model  # for message_start if the upstream names no model
        self.usage: Usage | None = None
        self.served_model: str | None = None
        self.done = False
        self.output_events = 0
        self._started = False
        self._closed = False
        self._block = -1  # index of the open content block, -1 when none is open
        self._kind = ""  # its kind: "thinking" | "text" | "tool_use"
        self._next = 0  # index of the next content block
        self._tools: dict[int, int] = {}  # OpenAI tool-call index → content block index
        self._finish: Any = None
        self._matched: Any = None  # vLLM's `stop_reason`: the stop string that ended the answer

    def feed(self, event: bytes) -> bytes:
        payload = event_data(event)
        if payload is None:  # an upstream keep-alive comment → a ping, once the message has started
            return _PING if self._started else b""
        if payload == b"[DONE]":
            self.done = True
            if not self._started:
                raise BadUpstreamBody("upstream stream ended before any chunk")
            return self._close()
        chunk = try_object(payload)
        if chunk is None:
            if not self._started:
                raise BadUpstreamBody("upstream stream is not valid SSE JSON")
            return b""  # unreadable mid-stream: Anthropic's grammar has no place for it
        if "error" in chunk and not chunk.get("choices"):
            if not self._started:
                raise BadUpstreamBody(f"upstream stream error: {error_message(chunk)}")
            return anthropic_error_event(error_message(chunk))
        out = b"" if self._started else self._start(chunk)
        usage = openai_usage(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    out += self._choice(choice)
        return out

    def _start(self, chunk: Json) -> bytes:
        self._started = True
        model = chunk.get("model")
        self.served_model = model if isinstance(model, str) else ""
        upstream_id = chunk.get("id")
        message: Json = {
            "id": "msg_" + upstream_id if isinstance(upstream_id, str) and upstream_id else new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": self.served_model or self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # Input usage is known only at the end; message_delta carries it then.
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return anthropic_event("message_start", {"type": "message_start", "message": message}) + _PING

    def _choice(self, choice: Json) -> bytes:
        out = b""
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = reasoning_of(delta)
            if reasoning:
                self.output_events += 1
                if self._thinking:
                    out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                    piece = b'{"type":"thinking_delta","thinking":' + orjson.dumps(reasoning) + b"}"
                    out += _delta(self._block, piece)
            text = delta.get("content")
            if isinstance(text, str) and text:
                self.output_events += 1
                out += self._open("text", {"type": "text", "text": ""})
                out += _delta(self._block, b'{"type":"text_delta","text":' + orjson.dumps(text) + b"}")
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else []:
                if isinstance(call, dict):
                    out += self._tool_call(call)
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
            self._matched = choice.get("stop_reason")
        return out

    def _tool_call(self, call: Json) -> bytes:
        index = call.get("index")
        if type(index) is not int:  # a few servers omit it: a call with an id is a new one
            index = len(self._tools) if call.get("id") or not self._tools else max(self._tools)
        fn = call.get("function")
        fn = fn if isinstance(fn, dict) else {}
        out = b""
        block = self._tools.get(index)
        if block is None:
            call_id = call.get("id")
            out = self._open(
                "tool_use",
                {
                    "type": "tool_use",
                    "id": call_id if isinstance(call_id, str) and call_id else new_id("toolu_"),
                    "name": str(fn.get("name") or ""),
                    "input": {},
                },
                force=True,
            )
            block = self._tools[index] = self._block
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            self.output_events += 1
            out += _delta(block, b'{"type":"input_json_delta","partial_json":' + orjson.dumps(args) + b"}")
        return out

    def _open(self, kind: str, block: Json, force: bool = False) -> bytes:
        """Start a block of `kind` unless one is open (each tool call is its own block: `force`)."""
        if self._kind == kind and not force:
            return b""
        out = self._close_block()
        self._block, self._kind = self._next, kind
        self._next += 1
        start = {"type": "content_block_start", "index": self._block, "content_block": block}
        return out + anthropic_event("content_block_start", start)

    def _close_block(self) -> bytes:
        if self._block < 0:
            return b""
        out = anthropic_event("content_block_stop", {"type": "content_block_stop", "index": self._block})
        self._block, self._kind = -1, ""
        return out

    def _close(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        reason, seq = stop_reason(self._finish, bool(self._tools), self._matched, self._stops)
        usage: Json = {"output_tokens": 0}
        if self.usage is not None:
            usage = anthropic_usage_json(self.usage)  # input side too: message_start had only zeros
        stop = {"stop_reason": reason, "stop_sequence": seq}
        delta = {"type": "message_delta", "delta": stop, "usage": usage}
        return (
            self._close_block()
            + anthropic_event("message_delta", delta)
            + anthropic_event("message_stop", {"type": "message_stop"})
        )

    def finish(self) -> bytes:
        """The closing events, if `[DONE]` did not already send them (a server that just ends)."""
        return self._close() if self._started else b""

    def error_event(self, message: str, code: str) -> bytes:
        return anthropic_error_event(message)
