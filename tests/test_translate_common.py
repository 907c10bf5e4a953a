"""Shared helpers for the translate tests, and tests of the small shared pieces (errors, count_tokens,
exchange_for). The helpers drive the official SDKs offline through httpx2.MockTransport."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import orjson
import pytest

from llmswitch.providers.exchange import StreamTranslator
from llmswitch.providers.sse import EventSplitter, event_data
from llmswitch.translate import (
    AnthropicClientOpenAIUpstream,
    AnthropicPassthrough,
    OpenAIClientAnthropicUpstream,
    anthropic_error_body,
    anthropic_error_type,
    count_tokens_estimate,
    exchange_for,
)

Json = dict[str, Any]


# --- helpers ----------------------------------------------------------------------------------------


def oa_chunk(
    delta: Json | None = None,
    finish: str | None = None,
    *,
    usage: Json | None = None,
    choices: bool = True,
    model: str = "deepseek-reasoner",
) -> bytes:
    """One recorded-style OpenAI chunk event (DeepSeek's shape)."""
    chunk: Json = {
        "id": "0b7e2c1a-5d",
        "object": "chat.completion.chunk",
        "created": 1736000000,
        "model": model,
        "system_fingerprint": "fp_7e0991cad4",
    }
    chunk["choices"] = (
        [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}] if choices else []
    )
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def an_event(kind: str, **data: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


def run_stream(translator: StreamTranslator, upstream: bytes, chunk_size: int = 7) -> bytes:
    """Feed upstream SSE bytes in awkward slices (as the network would), then finish()."""
    splitter = EventSplitter()
    out = b""
    for i in range(0, len(upstream), chunk_size):
        for event in splitter.feed(upstream[i : i + chunk_size]):
            out += translator.feed(event)
    assert not splitter.pending.strip()
    return out + translator.finish()


def sse_events(data: bytes) -> list[tuple[str | None, Any]]:
    """Client-side parse: (event name, JSON or raw payload) per event."""
    out: list[tuple[str | None, Any]] = []
    for event in EventSplitter().feed(data + b"\n\n"):
        name = None
        for line in event.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
        payload = event_data(event)
        if payload is None:
            continue
        out.append((name, payload.decode() if payload == b"[DONE]" else orjson.loads(payload)))
    return out


def _transport(body: bytes, stream: bool) -> httpx2.MockTransport:
    def handler(request: httpx2.Request) -> httpx2.Response:
        ctype = "text/event-stream" if stream else "application/json"
        return httpx2.Response(200, content=body, headers={"content-type": ctype})

    return httpx2.MockTransport(handler)


def anthropic_client(body: bytes, stream: bool = False) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="k",
        base_url="http://gateway",
        max_retries=0,
        http_client=httpx2.Client(transport=_transport(body, stream)),
    )


def openai_client(body: bytes, stream: bool = False) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="k",
        base_url="http://gateway/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=_transport(body, stream)),
    )


def anthropic_final_message(sse: bytes) -> anthropic.types.Message:
    """Accumulate SSE bytes with the anthropic SDK's own MessageStream machinery."""
    client = anthropic_client(sse, stream=True)
    with client.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]) as s:
        return s.get_final_message()


def openai_final_completion(sse: bytes) -> openai.types.chat.ParsedChatCompletion[Any]:
    """Accumulate SSE bytes with the openai SDK's own ChatCompletionStream machinery."""
    client = openai_client(sse, stream=True)
    with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "x"}]) as s:
        return s.get_final_completion()


def openai_chunks(sse: bytes) -> list[openai.types.chat.ChatCompletionChunk]:
    client = openai_client(sse, stream=True)
    return list(
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
    )


# --- exchange_for ----------------------------------------------------------------------------------


def test_exchange_for_covers_the_three_pairs_with_fresh_instances() -> None:
    assert isinstance(exchange_for("anthropic", "anthropic"), AnthropicPassthrough)
    assert isinstance(exchange_for("anthropic", "openai"), AnthropicClientOpenAIUpstream)
    assert isinstance(exchange_for("openai", "anthropic"), OpenAIClientAnthropicUpstream)
    assert exchange_for("openai", "openai") is None
    assert exchange_for("anthropic", "bedrock") is None
    # Cross-protocol exchanges hold per-request state: never share one.
    assert exchange_for("anthropic", "openai") is not exchange_for("anthropic", "openai")


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (504, "api_error"),
        (529, "overloaded_error"),
        (422, "invalid_request_error"),
    ],
)
def test_anthropic_error_types(status: int, kind: str) -> None:
    assert anthropic_error_type(status) == kind
    assert orjson.loads(anthropic_error_body(status, "boom")) == {
        "type": "error",
        "error": {"type": kind, "message": "boom"},
    }


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
    ],
)
def test_anthropic_sdk_raises_the_matching_class_on_our_error_body(status: int, exc: type[Exception]) -> None:
    body = anthropic_error_body(status, "nope")

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=body, headers={"content-type": "application/json"})

    client = anthropic.Anthropic(
        api_key="k",
        base_url="http://g",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    with pytest.raises(exc) as info:
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    expected = {"type": "error", "error": {"type": anthropic_error_type(status), "message": "nope"}}
    assert getattr(info.value, "body", None) == expected


def test_count_tokens_estimate_counts_every_part() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}]}
    n = count_tokens_estimate(base)
    assert n == 100 + 4
    with_system = count_tokens_estimate({**base, "system": [{"type": "text", "text": "y" * 800}]})
    assert with_system == n + 200 + 2 + 8
    tool = {"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}
    assert count_tokens_estimate({**base, "tools": [tool]}) > n + 8
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    with_image = {
        "model": "m",
        "messages": [{"role": "user", "content": [image, {"type": "text", "text": "hi"}]}],
    }
    assert count_tokens_estimate(with_image) >= 1600
    call = {"type": "tool_use", "id": "t", "name": "Bash", "input": {"command": "ls -la " + "z" * 100}}
    result = {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "w" * 400}]}
    turns = [{"role": "assistant", "content": [call]}, {"role": "user", "content": [result]}]
    assert count_tokens_estimate({"model": "m", "messages": turns}) > 100 + 25
    assert count_tokens_estimate({"model": "m", "messages": []}) == 1


def test_count_tokens_unicode_is_counted_in_bytes() -> None:
    assert count_tokens_estimate({"messages": [{"role": "user", "content": "你好" * 100}]}) == 150 + 4
