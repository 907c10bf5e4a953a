"""OpenAI Chat Completions ⇄ Anthropic Messages: request bodies, answers and streams, both ways.

`exchange_for(surface, upstream_api)` gives the `Exchange` for a client surface ("openai" | "anthropic")
and an upstream protocol ("openai" | "anthropic"): a new instance per call, since the cross-protocol
ones remember the client request between `upstream_body` and `complete`. OpenAI → OpenAI is the
providers' own pass-through (None here).
"""

from __future__ import annotations

from llmswitch.providers.exchange import Exchange
from llmswitch.translate.count_tokens import count_tokens_estimate
from llmswitch.translate.errors import (
    anthropic_error_body,
    anthropic_error_event,
    anthropic_error_type,
    openai_error_event,
)
from llmswitch.translate.exchanges import AnthropicClientOpenAIUpstream, OpenAIClientAnthropicUpstream
from llmswitch.translate.messages_to_chat import BadClientBody, check_messages_body
from llmswitch.translate.passthrough import AnthropicPassthrough


def exchange_for(surface: str, upstream_api: str) -> Exchange | None:
    if surface == "anthropic":
        if upstream_api == "anthropic":
            return AnthropicPassthrough()
        if upstream_api == "openai":
            return AnthropicClientOpenAIUpstream()
    elif surface == "openai" and upstream_api == "anthropic":
        return OpenAIClientAnthropicUpstream()
    return None


__all__ = [
    "AnthropicClientOpenAIUpstream",
    "AnthropicPassthrough",
    "BadClientBody",
    "OpenAIClientAnthropicUpstream",
    "anthropic_error_body",
    "anthropic_error_event",
    "anthropic_error_type",
    "check_messages_body",
    "count_tokens_estimate",
    "exchange_for",
    "openai_error_event",
]
