"""OpenAI-compatible upstreams (OpenAI, DeepSeek, Moonshot, Z.ai, DashScope, OpenRouter, vLLM, …).

The canonical request is OpenAI's chat-completions body, so for these upstreams the client's bytes pass
through: only `model` is replaced, by a byte splice when that is unambiguous, and streams get
`stream_options.include_usage` so that every stream is priced.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmswitch.api.errors import GatewayError
from llmswitch.pricing.usage import Usage
from llmswitch.providers.exchange import BadUpstreamBody
from llmswitch.providers.http_client import ConnectionPool, request_head
from llmswitch.providers.sse import event_data

_MODEL_KEY = b'"model"'
_ESCAPED_LETTER = b"\\u006"  # \u0061-\u006f: a, d, e, l, m, o, … spelt as escapes
_USAGE_OPTION = b'"stream_options":{"include_usage":true},'
_LOOK_AT = (b"[DONE]", b'"usage":{', b'"usage": {')  # events the stream translator must parse


def chat_head(
    pool: ConnectionPool, api_key: str | None, extra: dict[str, str], auth: str | None = None
) -> bytes:
    headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")]
    if api_key and auth != "none":
        headers.append(
            ("x-api-key", api_key) if auth == "x-api-key" else ("Authorization", f"Bearer {api_key}")
        )
    headers.extend(extra.items())
    return request_head(pool, "/chat/completions", headers)


def rewrite_body(raw: bytes, req: dict[str, Any], upstream_model: str, add_usage_option: bool) -> bytes:
    """The client's body with `model` set to the upstream id (and include_usage added if asked).

    Fast path: `"model"` occurs once in the raw bytes, so it is the top-level key, and its value is encoded
    the way orjson would encode it: splice the new value in. Anything else is re-encoded from `req`.
    A key can also be spelt with escapes (`"mo\\u0064el"`, a duplicate that JSON parsers resolve last-wins):
    any escaped lowercase ASCII letter (`\\u006…`, which no ordinary encoder writes) takes the slow path,
    so the upstream can never be handed a model other than the deployment's.
    """
    if (add_usage_option and "stream_options" in req) or raw.count(_MODEL_KEY) != 1 or _ESCAPED_LETTER in raw:
        return _reencode(req, upstream_model, add_usage_option)
    old = orjson.dumps(req["model"])
    compact = raw.find(_MODEL_KEY + b":" + old)  # how most clients write it: one find, no scan
    i = compact + len(_MODEL_KEY) + 1 if compact >= 0 else _value_start(raw)
    if i < 0 or raw[i : i + len(old)] != old:
        return _reencode(req, upstream_model, add_usage_option)
    out = b"%s%s%s" % (raw[:i], orjson.dumps(upstream_model), raw[i + len(old) :])
    if add_usage_option:
        brace = out.find(b"{")
        out = out[: brace + 1] + _USAGE_OPTION + out[brace + 1 :]
    return out


def _value_start(raw: bytes) -> int:
    """Where the value of the (single) `"model"` key starts, whitespace allowed around the colon; -1 if
    the bytes after the key are not a colon."""
    i = raw.find(_MODEL_KEY) + len(_MODEL_KEY)
    n = len(raw)
    while i < n and raw[i] in b" \t\r\n":
        i += 1
    if i >= n or raw[i] != 0x3A:  # ':'
        return -1
    i += 1
    while i < n and raw[i] in b" \t\r\n":
        i += 1
    return i


def _reencode(req: dict[str, Any], upstream_model: str, add_usage_option: bool) -> bytes:
    body = dict(req)
    body["model"] = upstream_model
    if add_usage_option:
        opts = body.get("stream_options")
        body["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
    return orjson.dumps(body)


def _int(v: Any) -> int:
    return v if type(v) is int and v > 0 else 0


def parse_usage(u: Any) -> Usage | None:
    """OpenAI-style `usage`, with the cache fields other OpenAI-compatible APIs use."""
    if not isinstance(u, dict):
        return None
    prompt = _int(u.get("prompt_tokens"))
    output = _int(u.get("completion_tokens"))
    details = u.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    if not cached:  # DeepSeek's field, then some Anthropic-compatible servers'
        cached = _int(u.get("prompt_cache_hit_tokens")) or _int(u.get("cache_read_input_tokens"))
    out_details = u.get("completion_tokens_details")
    reasoning = _int(out_details.get("reasoning_tokens")) if isinstance(out_details, dict) else 0
    return Usage(prompt, min(cached, prompt), 0, output, reasoning)


class OpenAIPassthrough:
    """OpenAI client, OpenAI-compatible upstream: bytes pass through, usage is read on the way."""

    def upstream_body(
        self, raw: bytes, body: dict[str, Any], upstream_model: str, stream: bool, want_usage: bool
    ) -> bytes:
        return rewrite_body(raw, body, upstream_model, stream and not want_usage)

    def complete(self, raw: bytes, upstream_model: str) -> tuple[bytes, Usage | None, str]:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadUpstreamBody("upstream answered 200 with a body that is not JSON") from None
        if not isinstance(data, dict) or "choices" not in data:
            raise BadUpstreamBody("upstream answered 200 without choices")
        reported = data.get("model")
        served = reported if isinstance(reported, str) and reported else upstream_model
        return raw, parse_usage(data.get("usage")), served

    def stream(self, want_usage: bool, client_body: dict[str, Any]) -> OpenAIPassthroughStream:
        return OpenAIPassthroughStream(want_usage)


class OpenAIPassthroughStream:
    """Forwards OpenAI chunks as they are; drops the usage-only chunk unless the client asked for it."""

    __slots__ = ("done", "output_events", "served_model", "usage", "want_usage")

    def __init__(self, want_usage: bool) -> None:
        self.want_usage = want_usage
        self.usage: Usage | None = None
        self.served_model: str | None = None
        self.done = False
        self.output_events = 0

    def feed(self, event: bytes) -> bytes:
        payload = event_data(event)
        if payload is None:  # comments / keep-alives
            return event + b"\n\n"
        if payload == b"[DONE]":
            self.done = True
            return event + b"\n\n"
        # Parse only what we must: the first event (is the stream sound?) and usage-bearing ones.
        # With include_usage, OpenAI puts `"usage":null` on every chunk; those need no parse.
        if self.served_model is None or (b'"usage"' in payload and b'"usage":null' not in payload):
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                if self.served_model is None:
                    raise BadUpstreamBody("upstream stream is not valid SSE JSON") from None
                return event + b"\n\n"  # an unreadable event mid-stream: the client judges it
            if not isinstance(chunk, dict):
                raise BadUpstreamBody("upstream stream event is not a JSON object")
            if self.served_model is None:
                model = chunk.get("model")
                self.served_model = model if isinstance(model, str) and model else ""
            usage = parse_usage(chunk.get("usage"))
            if usage is not None:
                self.usage = usage
                if not self.want_usage and not chunk.get("choices"):
                    return b""  # the usage-only chunk we asked for on the client's behalf
        self.output_events += 1
        return event + b"\n\n"

    def fast_prefix(self, block: bytes) -> int:
        """How many leading bytes of `block` (whole events) pass on as they are: those before the first
        event that needs a look (usage, the end marker), once the first event has been read."""
        if self.served_model is None:
            return 0
        end = len(block)
        for marker in _LOOK_AT:
            i = block.find(marker, 0, end)
            if i >= 0:
                end = i
        if end < len(block):  # cut before the event holding the marker
            cut = block.rfind(b"\n\n", 0, end)
            end = cut + 2 if cut >= 0 else 0
        if end:
            self.output_events += block.count(b"data:", 0, end)
        return end

    def finish(self) -> bytes:
        return b""

    def error_event(self, message: str, code: str) -> bytes:
        return b"data: " + GatewayError(502, message, code).openai_body() + b"\n\n"
