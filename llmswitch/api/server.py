"""The HTTP/1.1 front door: an asyncio protocol fed by llhttp (httptools), no web framework.

One `ClientConnection` per TCP connection. Requests are handled one at a time per connection (HTTP/1.1
semantics); a pipelined request waits its turn. Handlers get a `Request` and answer through the
connection's `respond` / `start_stream` / `send_chunk` / `end_stream`. A handler is called as soon as a
request is read, without a task, and says how it goes on (`Outcome`): answered already (None), a
coroutine to run as a task, or `DEFERRED`: it answers from callbacks and then calls `finished()`. The
gateway's model requests are deferred, so the common request needs no task at all.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, cast

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


class _Deferred:
    """The handler answers later, from callbacks, and then calls `ClientConnection.finished()`."""


DEFERRED: Final = _Deferred()
Outcome = Awaitable[None] | _Deferred | None
Handler = Callable[[Request, "ClientConnection"], Outcome]


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


# After a refused request: how long to keep draining (and dropping) input after our answer and FIN, so
# the client reads the answer instead of a reset caused by its unread upload.
_LINGER = 2.0


def _discard(data: bytes) -> None:
    """The parser once a connection has failed: its further input is dropped unread."""


class _ReadWatch:
    """Request-read timeouts for all of a server's connections: one timer per server, not one per request.

    About once a second (`interval`) it walks the connections; one whose partly-read request made no
    progress for `timeout` seconds (head: since it began; body: since the last bytes) gets 408 and is
    closed. Runs only while the server has connections."""

    __slots__ = ("clock", "conns", "handle", "interval", "loop", "timeout")

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Callable[[], float], timeout: float) -> None:
        self.loop = loop
        self.clock = clock
        self.timeout = timeout
        self.interval = min(1.0, timeout / 4)
        self.conns: set[ClientConnection] = set()
        self.handle: asyncio.TimerHandle | None = None

    def add(self, conn: ClientConnection) -> None:
        self.conns.add(conn)
        if self.handle is None:
            self.handle = self.loop.call_later(self.interval, self.sweep)

    def sweep(self) -> None:
        if not self.conns:
            self.handle = None
            return
        now = self.clock()
        for conn in [c for c in self.conns if c.read_stalled(now, self.timeout)]:
            conn.fail(GatewayError(408, "timed out reading the request", "request_timeout"))
        self.handle = self.loop.call_later(self.interval, self.sweep)


_STATUS_LINES = {status: b"HTTP/1.1 %d %s\r\n" % (status, reason) for status, reason in _REASONS.items()}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d Unknown\r\n" % status


class _Stop(Exception):
    """Raised from a parser callback to stop llhttp once the connection has failed."""


class ClientConnection:
    """An asyncio protocol by its methods, not by inheritance: a subclass of asyncio.Protocol (a Python
    class) cannot be a native class when compiled, and every attribute access would go through a dict."""

    def __init__(
        self,
        handler: Handler,
        max_body: int,
        clock: Callable[[], float],
        loop: asyncio.AbstractEventLoop,
        watch: _ReadWatch | None = None,
    ) -> None:
        self.loop = loop  # kept: asyncio.get_running_loop() costs a getpid() syscall per call on 3.11
        self.handler = handler
        self.max_body = max_body
        self.clock = clock
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self._feed: Callable[[bytes], None] = self.parser.feed_data  # `_discard` once the connection failed
        self._watch = watch
        self.closed = False
        self.on_pause: Callable[[], None] | None = None  # set by a stream relay for back-pressure
        self.on_resume: Callable[[], None] | None = None
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._started = 0.0
        # 0: no request partly read; 1: one is (head or body); 2: its 100 Continue waits for its turn.
        self._phase = 0
        self._seen_size = 0  # `_size` at the read watch's last look, and when it last changed
        self._progress_at = 0.0
        self._queue: deque[Request] = deque()  # read, not yet handed to the handler
        self._active = False  # a request is being served
        self._cancel: Callable[[], object] | None = None  # stops the request being served (client left)
        self._keep_alive = True
        self._head_only = False  # the request being answered is HEAD: headers, no body
        self._failed: GatewayError | None = None  # the answer that ends this connection, once it failed
        self._unparsable = False  # ... because the input after the last request did not parse

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        if self._watch is not None:
            self._watch.add(self)

    def data_received(self, data: bytes) -> None:
        # Requests complete inside feed_data (on_message_complete) and are queued; they are handed to the
        # handler after it, once the whole read is parsed, so an error found later in the same read
        # (an upgrade, bytes that do not parse) is known before the request before it is answered.
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade:
            # llhttp completed the upgrade request (on_message_complete) before refusing it: take it
            # back (the last one queued), the 400 is its answer.
            if self._queue:
                self._queue.pop()
            self.fail(GatewayError(400, "protocol upgrades are not supported", "bad_request"))
        except httptools.HttpParserError:  # also our own _Stop, after fail() was called
            if self._failed is None:
                self._unparsable = True
            self.fail(GatewayError(400, "malformed HTTP request", "bad_request"))
        else:
            # A request line that ends without a version (HTTP/0.9) leaves llhttp waiting for headers
            # that a 0.9 client never sends. Checked only when a request is left incomplete (rare).
            if self._phase and data[-1:] == b"\n" and self.parser.get_http_version() == "0.0":
                self.fail(GatewayError(400, "HTTP/0.9 requests are not supported", "bad_request"))
        if self._queue and not self._active:
            self._serve_queue()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._watch is not None:
            self._watch.conns.discard(self)
        if self._cancel is not None:
            cancel, self._cancel = self._cancel, None
            cancel()  # the client left: stop working (and paying) for it
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
        self._phase = 1

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        cl = self._headers.get(b"content-length")
        if cl is not None and cl.isdigit() and int(cl) > self.max_body:
            self._refuse_body()
        elif self._headers.get(b"expect", b"").lower() == b"100-continue":
            # curl sends this for bodies over 1 KB and would otherwise wait a second before sending. Only
            # for the request being served: written now, it could land inside an earlier answer's body.
            if self._busy():
                self._phase = 2  # sent when the earlier requests are answered (see _when_idle)
            elif self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.max_body:
            self._refuse_body()
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._phase = 0
        url = self._url
        path, _, query = url.partition(b"?")
        body = self._body
        self._queue.append(
            Request(
                self.parser.get_method(),
                path,
                query,
                self._headers,
                body[0] if len(body) == 1 else b"".join(body),
                self.parser.should_keep_alive(),
                self._started,
            )
        )

    # handling
    def _busy(self) -> bool:
        """A request is being served or waits its turn: an answer written now could overtake its own."""
        return self._active or bool(self._queue)

    def _serve_queue(self) -> None:
        """Serve queued requests in order until one is left running (a task or deferred) or none is left."""
        while self._queue and not self._active and not self.closed:
            self._run(self._queue.popleft())
        if not self._active:
            self._when_idle()

    def _run(self, req: Request) -> None:
        self._keep_alive = req.keep_alive
        self._head_only = req.method == b"HEAD"
        self._active = True
        try:
            outcome = self.handler(req, self)
        except GatewayError as e:
            self.answer_error(e)
            outcome = None
        except Exception:
            self._answer_bug(req)
            outcome = None
        if outcome is None:
            self._active = False
        elif outcome is not DEFERRED:
            task = self.loop.create_task(self._handle(cast(Awaitable[None], outcome), req))
            self._cancel = task.cancel

    async def _handle(self, work: Awaitable[None], req: Request) -> None:
        try:
            await work
        except asyncio.CancelledError:
            return
        except GatewayError as e:
            self.answer_error(e)
        except Exception:
            self._answer_bug(req)
        self.finished()

    def cancel_with(self, cancel: Callable[[], object]) -> None:
        """What stops the request being served if the client leaves (a deferred handler sets it)."""
        self._cancel = cancel

    def finished(self) -> None:
        """The request being served is answered: go on with the next one (called by deferred handlers)."""
        self._active = False
        self._cancel = None
        if self._queue and not self.closed:
            # Not from inside the handler's call chain (no recursion through a pipelined queue); until
            # then new requests queue behind the waiting ones.
            self._active = True
            self.loop.call_soon(self._next)
        else:
            self._when_idle()

    def _next(self) -> None:
        self._active = False
        self._serve_queue()

    def _when_idle(self) -> None:
        if self.closed:
            return
        if self._failed is not None:
            self._answer_failure()
        elif self._phase == 2:  # the next request's head asked for 100 Continue while we were busy
            self._phase = 1
            if self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def answer_error(self, err: GatewayError) -> None:
        """Answer the request being served with `err`."""
        if self._unparsable and not self._queue:
            # Refused, and what follows it does not parse: most likely the rest of this request's body
            # (a missing or short Content-Length), not a request of its own. This answer is the last: it
            # says `connection: close` instead of a second answer for the same bytes.
            self._keep_alive = False
        self.respond(err.status, err.headers, err.body())

    def _answer_bug(self, req: Request) -> None:
        log.exception("unhandled error serving %s %s", req.method.decode(), req.path.decode("latin-1"))
        err = GatewayError(500, "internal gateway error", "internal_error")
        err.surface = surface_of(req.path)
        self.respond(500, [], err.body())

    def fail(self, err: GatewayError) -> None:
        """Stop reading requests: answer `err` after the answers owed to the requests before it, then close.

        Responses must stay in request order, so an error about a pipelined request waits its turn."""
        if self._failed is not None:
            return
        self._feed = _discard
        self._phase = 0
        err.surface = surface_of(self._url)
        self._failed = err
        if not self._busy():
            self._answer_failure()

    def _refuse_body(self) -> None:
        self._body = []
        self.fail(GatewayError(413, f"request body exceeds the {self.max_body}-byte limit", "body_too_large"))
        raise _Stop  # stop llhttp inside this feed; the rest of the body is never read

    def read_stalled(self, now: float, timeout: float) -> bool:
        """For the read watch: a partly-read request has made no progress for `timeout` seconds.

        Time spent behind an earlier request (its answer still being produced) does not count."""
        if not self._phase or self.closed:
            return False
        if self._size != self._seen_size or self._busy():
            self._seen_size = self._size
            self._progress_at = now
            return False
        return now - max(self._started, self._progress_at) >= timeout

    def _answer_failure(self) -> None:
        err = self._failed
        transport = self.transport
        if err is None or self.closed or transport is None:
            return
        self._keep_alive = False
        self._head_only = False
        body = err.body()
        out = self._head(
            err.status,
            err.headers,
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body),
        )
        out += body
        transport.write(out)
        self.closed = True
        # Lingering close: send FIN after the answer, drop what the client still sends (an upload we
        # refused) for a while, then close. Closing with unread input would make the kernel send RST,
        # which can destroy the answer before the client reads it.
        if transport.can_write_eof():
            transport.write_eof()
            self.loop.call_later(_LINGER, transport.abort)
        else:
            transport.close()

    # writing responses
    def _head(self, status: int, headers: list[tuple[str, str]], extra: bytes) -> bytearray:
        out = bytearray(_status_line(status))
        if headers:  # one encode for all of them; map/join run in C, no bytecode per header
            out += ("\r\n".join(map(": ".join, headers)) + "\r\n").encode("latin-1")
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
        if not self._head_only:  # HEAD: the GET's headers (its Content-Length included), no body
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
        if first and not self._head_only:
            out += b"%x\r\n%s\r\n" % (len(first), first)
        self.transport.write(out)

    def send_chunk(self, data: bytes) -> None:
        if data and not self.closed and not self._head_only and self.transport is not None:
            self.transport.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        if self.closed or self.transport is None:
            return
        if not self._head_only:
            self.transport.write(b"0\r\n\r\n")
        self.on_pause = self.on_resume = None
        if not self._keep_alive:
            self.closed = True
            self.transport.close()


async def serve(
    handler: Handler,
    sock: socket.socket,
    *,
    max_body: int,
    clock: Callable[[], float],
    request_timeout: float = 30.0,
) -> asyncio.Server:
    """`request_timeout`: the longest a partly-read request may go without progress before 408."""
    loop = asyncio.get_running_loop()
    watch = _ReadWatch(loop, clock, request_timeout)
    return await loop.create_server(
        lambda: cast(asyncio.Protocol, ClientConnection(handler, max_body, clock, loop, watch)), sock=sock
    )
