"""`POST /v1/chat/completions`: decode and check the request once, then hand it to the executor."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

import orjson

from llmswitch.api.errors import GatewayError
from llmswitch.api.server import Request
from llmswitch.routing.call import Call

_MAX_TAGS = 2048


# A random per-process prefix and a counter: unique across replicas without a syscall per request.
# The counter starts at 10**9 so that ids keep one length, and sort in the order they were made (the
# ledger's request_id index then appends at its end), for 9 billion requests per process; str() of
# an int is ~5x cheaper than a formatted hex field on the compiled path.
_ID_PREFIX = "req_" + os.urandom(8).hex()
_ids = itertools.count(1_000_000_000)


def new_request_id() -> str:
    return _ID_PREFIX + str(next(_ids))


def _reseed_request_ids() -> None:
    """A forked worker (`--workers N`) must not repeat its siblings' ids: a prefix of its own."""
    global _ID_PREFIX, _ids
    _ID_PREFIX = "req_" + os.urandom(8).hex()
    _ids = itertools.count(1_000_000_000)


os.register_at_fork(after_in_child=_reseed_request_ids)


def parse_tags(raw: bytes | None) -> str | None:
    """`x-llmswitch-tags`: a JSON object, or `k=v,k2=v2` (a bare word means `word=true`). Stored as JSON."""
    if not raw:
        return None
    if len(raw) > _MAX_TAGS:
        raise GatewayError(400, f"x-llmswitch-tags is longer than {_MAX_TAGS} bytes", "invalid_tags")
    text = raw.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise GatewayError(400, "x-llmswitch-tags is not a valid JSON object", "invalid_tags") from None
        if not isinstance(obj, dict):
            raise GatewayError(400, "x-llmswitch-tags is not a valid JSON object", "invalid_tags")
        tags = {str(k): v if isinstance(v, str | int | float | bool) else str(v) for k, v in obj.items()}
    else:
        tags = {}
        for part in text.split(","):
            k, sep, v = part.strip().partition("=")
            if k.strip():
                tags[k.strip()] = v.strip() if sep else "true"
    return orjson.dumps(tags).decode() if tags else None


def decode_chat(req: Request) -> dict[str, Any]:
    """The request body as a dict, checked just enough that no upstream gets a request we can tell is bad."""
    try:
        body = orjson.loads(req.body)
    except orjson.JSONDecodeError:
        raise GatewayError(400, "request body is not valid JSON", "invalid_json") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "request body must be a JSON object", "invalid_request")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "`model` is required and must be a string", "invalid_model", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise GatewayError(
            400, "`messages` is required and must be a non-empty array", "invalid_messages", param="messages"
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise GatewayError(
                400,
                f"messages[{i}] must be an object with a string `role`",
                "invalid_messages",
                param=f"messages[{i}]",
            )
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise GatewayError(400, "`stream` must be a boolean", "invalid_stream", param="stream")
    return body


def client_call(
    req: Request,
    key_id: str | None,
    body: dict[str, Any],
    tags: str | None,
    *,
    want_usage: bool,
    surface: str,
    upstream_headers: dict[str, bytes],
) -> Call:
    """The Call for a request its surface has decoded and checked (either API)."""
    return Call(
        request_id=new_request_id(),
        ts=time.time(),
        started=req.started,
        key_id=key_id,
        model=body["model"],
        body=body,
        raw=req.body,
        stream=body.get("stream") is True,
        want_usage=want_usage,
        tags=tags,
        surface=surface,
        upstream_headers=upstream_headers,
    )


def chat_call(req: Request, key_id: str | None) -> Call:
    tags = parse_tags(req.headers.get(b"x-llmswitch-tags"))
    body = decode_chat(req)
    opts = body.get("stream_options")
    want_usage = body.get("stream") is True and isinstance(opts, dict) and opts.get("include_usage") is True
    return client_call(
        req,
        key_id,
        body,
        tags,
        want_usage=want_usage,
        surface="openai",
        upstream_headers=_DEFAULT_UPSTREAM_HEADERS,
    )


# An OpenAI client reaching an Anthropic upstream: the protocol version Anthropic requires.
_DEFAULT_UPSTREAM_HEADERS = {"anthropic": b"anthropic-version: 2023-06-01\r\n"}
