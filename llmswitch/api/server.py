"""The HTTP/1.1 front door: an asyncio protocol fed by llhttp (httptools), no web framework.

One `ClientConnection` per TCP connection. Requests are handled one at a time per connection (HTTP/1.1
semantics); a pipelined request waits its turn. Handlers get a `Request` and answer through the
connection's `respond` / `start_stream` / `send_chunk` / `end_stream`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

import httptools

from llmswitch.api.errors import GatewayError

log = logging.getLogger("llmswitch.server")

_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Payload Too Large",
    422: b"Unprocessable Entity",
    429: b"Too Many Requests",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


class Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "path", "query", "started")

    def __init__(
        self,
        method: bytes,
        path: bytes,
        query: bytes,
        headers: dict[bytes, bytes],
        body: bytes,
        keep_alive: bool,
        started: float,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers  # lower-cased names; a repeated header keeps its last value
        self.body = body
        self.keep_alive = keep_alive
        self.started = started  # perf_counter() when the head arrived


Handler = Callable[[Request, "ClientConnection"], Awaitable[None]]


class Responder(Protocol):
    """Where an answer goes: the client's connection, or a capture for a cascade's candidate call."""

    closed: bool
    on_pause: Callable[[], None] | None
    on_resume: Callable[[], None] | None

    def respond(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        content_type: bytes = b"application/json",
    ) -> None: ...

    def start_stream(self, status: int, headers: list[tuple[str, str]], first: bytes = b"") -> None: ...

    def send_chunk(self, data: bytes) -> None: ...

    def end_stream(self) -> None: ...


def surface_of(path: bytes) -> str:
    """Which client API a path belongs to, for the shape of its errors."""
    return "anthropic" if path.startswith(b"/v1/messages") else "openai"


_STATUS_LINES = {status: b"HTTP/1.1 %d %s\r\n" % (status, reason) for status, reason in _REASONS.items()}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d Unknown\r\n" % status


class ClientConnection(asyncio.Protocol):
    def __init__(
        self, handler: Handler, max_body: int, clock: Callable[[], float], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.loop = loop  # kept: asyncio.get_running_loop() costs a getpid() syscall per call on 3.11
        self.handler = handler
        self.max_body = max_body
        self.clock = clock
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.closed = False
        self.on_pause: Callable[[], None] | None = None  # set by a stream relay for back-pressure
        self.on_resume: Callable[[], None] | None = None
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._started = 0.0
        self._queue: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(GatewayError(400, "protocol upgrades are not supported", "bad_request"))
        except httptools.HttpParserError:
            if not self._too_large:
                self._reject(GatewayError(400, "malformed HTTP request", "bad_request"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()  # the client left: stop working (and paying) for it
        if self.on_resume is not None:
            self.on_resume()

    def pause_writing(self) -> None:
        if self.on_pause is not None:
            self.on_pause()

    def resume_writing(self) -> None:
        if self.on_resume is not None:
            self.on_resume()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._size = 0
        self._started = self.clock()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        cl = self._headers.get(b"content-length")
        if cl is not None and cl.isdigit() and int(cl) > self.max_body:
            self._refuse_body()
        elif self._headers.get(b"expect", b"").lower() == b"100-continue" and self.transport is not None:
            # curl sends this for bodies over 1 KB and would otherwise wait a second before sending.
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._size += len(body)
        if self._size > self.max_body:
            self._refuse_body()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._too_large:  # the 413 went out already; the body was read only to let the client see it
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            return
        url = self._url
        path, _, query = url.partition(b"?")
        req = Request(
            self.parser.get_method(),
            path,
            query,
            self._headers,
            b"".join(self._body),
            self.parser.should_keep_alive(),
            self._started,
        )
        if self._task is None or self._task.done():
            self._run(req)
        else:
            self._queue.append(req)

    # handling
    def _run(self, req: Request) -> None:
        self._keep_alive = req.keep_alive
        self._task = self.loop.create_task(self._handle(req))

    async def _handle(self, req: Request) -> None:
        try:
            await self.handler(req, self)
        except asyncio.CancelledError:
            return
        except GatewayError as e:
            self.respond(e.status, e.headers, e.body())
        except Exception:
            log.exception("unhandled error serving %s %s", req.method.decode(), req.path.decode("latin-1"))
            err = GatewayError(500, "internal gateway error", "internal_error")
            err.surface = surface_of(req.path)
            self.respond(500, [], err.body())
        if self._queue and not self.closed:
            self._run(self._queue.popleft())

    def _reject(self, err: GatewayError) -> None:
        """Answer a request we cannot read further, then close the connection."""
        self._keep_alive = False
        err.surface = surface_of(self._url)
        self.respond(err.status, err.headers, err.body())

    def _refuse_body(self) -> None:
        # Answer 413 at once but keep reading (and dropping) the body: closing a socket with unread input
        # makes the kernel send RST, and the client would see a reset instead of our answer.
        self._too_large = True
        self._body = []
        err = GatewayError(413, f"request body exceeds the {self.max_body}-byte limit", "body_too_large")
        err.surface = surface_of(self._url)
        if not self.closed and self.transport is not None:
            self._keep_alive = False
            out = self._head(
                413,
                [],
                b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(err.body()),
            )
            self.transport.write(bytes(out) + err.body())

    # writing responses
    def _head(self, status: int, headers: list[tuple[str, str]], extra: bytes) -> bytearray:
        out = bytearray(_status_line(status))
        if headers:  # one encode for all of them
            out += "".join([f"{k}: {v}\r\n" for k, v in headers]).encode("latin-1")
        if not self._keep_alive:
            out += b"connection: close\r\n"
        out += extra
        return out

    def respond(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        content_type: bytes = b"application/json",
    ) -> None:
        if self.closed or self.transport is None:
            return
        out = self._head(
            status, headers, b"content-type: %s\r\ncontent-length: %d\r\n\r\n" % (content_type, len(body))
        )
        out += body
        self.transport.write(out)
        if not self._keep_alive:
            self.closed = True
            self.transport.close()

    def start_stream(self, status: int, headers: list[tuple[str, str]], first: bytes = b"") -> None:
        if self.closed or self.transport is None:
            return
        out = self._head(
            status,
            headers,
            b"content-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n",
        )
        if first:
            out += b"%x\r\n%s\r\n" % (len(first), first)
        self.transport.write(out)

    def send_chunk(self, data: bytes) -> None:
        if data and not self.closed and self.transport is not None:
            self.transport.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        if self.closed or self.transport is None:
            return
        self.transport.write(b"0\r\n\r\n")
        self.on_pause = self.on_resume = None
        if not self._keep_alive:
            self.closed = True
            self.transport.close()


async def serve(
    handler: Handler, sock: socket.socket, *, max_body: int, clock: Callable[[], float]
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: ClientConnection(handler, max_body, clock, loop), sock=sock)
