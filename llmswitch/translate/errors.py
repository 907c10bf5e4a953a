"""In-stream error events of both surfaces (HTTP error bodies are `llmswitch.api.errors.GatewayError`'s)."""

from __future__ import annotations

import orjson

from llmswitch.api.errors import GatewayError, anthropic_error_type

__all__ = ["anthropic_error_body", "anthropic_error_event", "anthropic_error_type", "openai_error_event"]


def anthropic_error_body(status: int, message: str) -> bytes:
    """`{"type": "error", "error": {"type", "message"}}` for an HTTP error response."""
    return GatewayError(status, message).anthropic_body()


def anthropic_error_event(message: str) -> bytes:
    """An in-stream error in Anthropic's format (the SDK raises it as APIStatusError)."""
    err = {"type": "error", "error": {"type": "api_error", "message": message}}
    return b"event: error\ndata: " + orjson.dumps(err) + b"\n\n"


def openai_error_event(message: str, code: str) -> bytes:
    """An in-stream error in OpenAI's format (the SDK raises it as APIError)."""
    return b"data: " + GatewayError(502, message, code).openai_body() + b"\n\n"
