"""`POST /v1/messages` (Anthropic Messages API): decode and check the request once, then execute it."""

from __future__ import annotations

from typing import Any

import orjson

from llmswitch.api.chat import client_call, parse_tags
from llmswitch.api.errors import GatewayError
from llmswitch.api.server import Request
from llmswitch.routing.call import Call
from llmswitch.translate import check_messages_body

ANTHROPIC_VERSION = b"2023-06-01"


def _bad(message: str, param: str | None = None) -> GatewayError:
    err = GatewayError(400, message, "invalid_request", param=param)
    err.surface = "anthropic"
    return err


def decode_messages(req: Request) -> dict[str, Any]:
    """The request body as a dict, checked as far as Anthropic itself would refuse it."""
    try:
        body = orjson.loads(req.body)
    except orjson.JSONDecodeError:
        raise _bad("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    problem = check_messages_body(body)
    if problem is not None:
        raise _bad(problem)
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise _bad("system: must be a string or an array of text blocks", "system")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _bad("stream: must be a boolean", "stream")
    return body


def upstream_headers(req: Request) -> bytes:
    """Anthropic protocol headers to forward to Anthropic upstreams (version and beta flags)."""
    version = req.headers.get(b"anthropic-version") or ANTHROPIC_VERSION
    out = b"anthropic-version: " + version + b"\r\n"
    beta = req.headers.get(b"anthropic-beta")
    if beta:
        out += b"anthropic-beta: " + beta + b"\r\n"
    return out


def messages_call(req: Request, key_id: str | None) -> Call:
    tags = parse_tags(req.headers.get(b"x-llmswitch-tags"))
    body = decode_messages(req)
    return client_call(
        req,
        key_id,
        body,
        tags,
        want_usage=True,  # Anthropic streams always carry usage
        surface="anthropic",
        upstream_headers={"anthropic": upstream_headers(req)},
    )
