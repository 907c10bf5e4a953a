"""`GET /dashboard` (HTML) and `GET /dashboard.json`: who may see them, and what they answer.

The figures cover every key's traffic, so with client keys configured only keys marked `admin: true`
see them. Browsers send such a key as the password of HTTP Basic auth (any user name): a 401 asks for
it. API clients can send it as a bearer token or `x-api-key`, as on the other endpoints.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import orjson

from llmswitch.api.errors import GatewayError
from llmswitch.config import Config
from llmswitch.dashboard.cli import options_from
from llmswitch.dashboard.page import render_page
from llmswitch.dashboard.rankings import rankings
from llmswitch.policy.auth import bearer_token

if TYPE_CHECKING:
    from llmswitch.api.server import ClientConnection, Request
    from llmswitch.gateway import Gateway

__all__ = ["CHALLENGE", "dashboard_response", "presented_key", "serve_dashboard"]

CHALLENGE = ("www-authenticate", 'Basic realm="llmswitch dashboard", charset="UTF-8"')
_MAX_SINCE = 366 * 86_400.0


def serve_dashboard(gateway: Gateway, req: Request, conn: ClientConnection, as_json: bool) -> Awaitable[None]:
    """Checks the key now (401 / 403), then answers from an executor thread."""
    require_admin(gateway, req)
    return _answer(gateway, req, conn, as_json)


def require_admin(gateway: Gateway, req: Request) -> None:
    """Keys marked `admin` may see every key's figures; with no keys configured, anyone may."""
    if not gateway.keys.enabled:
        return
    token = presented_key(req.headers.get(b"authorization"), req.headers.get(b"x-api-key"))
    key_id = gateway.keys.identify(token) if token else None
    if key_id is None:
        message = "an admin key is required (as the password of Basic auth, or a bearer token)"
        raise GatewayError(401, message, "invalid_api_key", headers=[CHALLENGE])
    if key_id not in gateway.admin_keys:
        raise GatewayError(403, f"key {key_id!r} is not an admin key", "permission_denied")


async def _answer(gateway: Gateway, req: Request, conn: ClientConnection, as_json: bool) -> None:
    body, content_type = await gateway.executor.loop.run_in_executor(
        None, dashboard_response, gateway.config, as_json, req.query
    )
    conn.respond(200, [("cache-control", "no-store")], body, content_type)


def presented_key(authorization: bytes | None, x_api_key: bytes | None) -> bytes | None:
    """The key a client presents: Basic auth's password, a bearer token, or `x-api-key`."""
    if authorization and authorization[:6].lower() == b"basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        _, sep, password = decoded.partition(b":")
        return password if sep and password else None
    return bearer_token(authorization) or x_api_key or None


def dashboard_response(config: Config, as_json: bool, query: bytes) -> tuple[bytes, bytes]:
    """The body and content type; blocking (SQLite, the catalog): run it off the event loop."""
    from argparse import ArgumentTypeError

    from llmswitch.cli import parse_duration
    from llmswitch.ledger.usage import LedgerNotFound

    params = parse_qs(query.decode("latin-1"))
    since = params.get("since", ["7d"])[-1]
    baseline = params.get("baseline", ["gpt-4.1"])[-1]
    try:
        since_seconds = parse_duration(since)
    except ArgumentTypeError as e:
        raise GatewayError(400, str(e), "invalid_request", param="since") from None
    if not 0 < since_seconds <= _MAX_SINCE:
        raise GatewayError(400, "`since` must be between 1s and 366d", "invalid_request", param="since")
    try:
        data = rankings(config.storage.url, options_from(config, since_seconds, baseline[:200]))
    except LedgerNotFound:
        raise GatewayError(503, "the ledger is not ready yet", "ledger_unavailable") from None
    if as_json:
        return orjson.dumps(data), b"application/json"
    return render_page(data).encode(), b"text/html; charset=utf-8"
