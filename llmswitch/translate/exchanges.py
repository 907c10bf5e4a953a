"""The two cross-protocol Exchanges (the Anthropic pass-through is in `passthrough.py`).

Each instance serves one request: `upstream_body` remembers what translating the answer needs (the
client's model, thinking and stop sequences), because `complete` only receives the upstream's bytes.
Get a fresh one per request from `llmswitch.translate.exchange_for`.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmswitch.pricing.usage import Usage
from llmswitch.translate._util import load_object, wants_thinking
from llmswitch.translate.chat_answer import message_answer
from llmswitch.translate.chat_stream import ChatToMessagesStream
from llmswitch.translate.chat_to_messages import messages_request
from llmswitch.translate.messages_answer import chat_answer
from llmswitch.translate.messages_stream import MessagesToChatStream
from llmswitch.translate.messages_to_chat import chat_request, stop_sequences


def _served(data: dict[str, Any], upstream_model: str) -> str:
    model = data.get("model")
    return model if isinstance(model, str) and model else upstream_model


class AnthropicClientOpenAIUpstream:
    """Client speaks Anthropic Messages; the upstream is OpenAI-compatible (Kimi, GLM, DeepSeek, Qwen…)."""

    __slots__ = ("stops", "thinking")

    def __init__(self) -> None:
        self.thinking = False
        self.stops: list[str] = []

    def upstream_body(
        self, raw: bytes, body: dict[str, Any], upstream_model: str, stream: bool, want_usage: bool
    ) -> bytes:
        self.thinking = wants_thinking(body)
        self.stops = stop_sequences(body)
        return orjson.dumps(chat_request(body, upstream_model, stream))

    def complete(self, raw: bytes, upstream_model: str) -> tuple[bytes, Usage | None, str]:
        data = load_object(raw, "upstream answer")
        served = _served(data, upstream_model)
        answer, usage = message_answer(data, served, self.thinking, self.stops)
        return orjson.dumps(answer), usage, served

    def stream(self, want_usage: bool, client_body: dict[str, Any]) -> ChatToMessagesStream:
        model = client_body.get("model")
        return ChatToMessagesStream(
            wants_thinking(client_body), stop_sequences(client_body), model if isinstance(model, str) else ""
        )


class OpenAIClientAnthropicUpstream:
    """Client speaks OpenAI Chat Completions; the upstream is Anthropic (`api: anthropic`)."""

    __slots__ = ()

    def upstream_body(
        self, raw: bytes, body: dict[str, Any], upstream_model: str, stream: bool, want_usage: bool
    ) -> bytes:
        return orjson.dumps(messages_request(body, upstream_model, stream))

    def complete(self, raw: bytes, upstream_model: str) -> tuple[bytes, Usage | None, str]:
        data = load_object(raw, "upstream answer")
        served = _served(data, upstream_model)
        answer, usage = chat_answer(data, served)
        return orjson.dumps(answer), usage, served

    def stream(self, want_usage: bool, client_body: dict[str, Any]) -> MessagesToChatStream:
        return MessagesToChatStream(want_usage)
