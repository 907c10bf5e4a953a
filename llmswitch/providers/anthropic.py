"""Anthropic upstreams (`api: anthropic`): the Messages endpoint and its auth header.

The protocol version and beta flags are per request (`anthropic-version`, `anthropic-beta` from the
client, or the default), so they are not part of the fixed head."""

from __future__ import annotations

from llmswitch.providers.http_client import ConnectionPool, request_head


def messages_head(
    pool: ConnectionPool, api_key: str | None, extra: dict[str, str], auth: str | None = None
) -> bytes:
    headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")]
    if api_key and auth != "none":
        headers.append(("Authorization", f"Bearer {api_key}") if auth == "bearer" else ("x-api-key", api_key))
    headers.extend(extra.items())
    return request_head(pool, "/messages", headers)
